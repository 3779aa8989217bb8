"""Stage tasks, one thin module per queue, registered under explicit names.

``stage_task("probe")`` turns a function ``(ctx) -> summary`` into a :class:`PipelineTask`
named ``mediaintel.stage.probe`` with the stage's time limits from the plans.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from celery.signals import worker_process_init, worker_process_shutdown

from mediaintel.celery import app
from workers import presence  # noqa: F401  (the worker's presence heartbeat)
from workers.base import PipelineTask, StageContext
from workers.process import limit_threads, preload

StageFn = Callable[[StageContext], dict[str, Any]]


def _limits(stage: str) -> tuple[int, int]:
    from apps.pipeline.plans import PLANS

    defs = [s for plan in PLANS.values() for s in plan if s.name == stage]
    if not defs:
        return 600, 660
    return max(s.soft_time_limit for s in defs), max(s.time_limit for s in defs)


def stage_task(stage: str, *, atomic: bool = False) -> Callable[[StageFn], PipelineTask]:
    """``atomic``: the stage writes as it goes (not only through ``ctx.save``), so it runs inside the
    transaction that completes it — only for stages that run no model (``moderate``)."""

    def register(fn: StageFn) -> PipelineTask:
        soft, hard = _limits(stage)
        cls = type(f"{stage.title().replace('_', '')}Stage", (PipelineTask,), {
            "name": f"mediaintel.stage.{stage}", "stage": stage, "soft_time_limit": soft, "time_limit": hard,
            "atomic_execute": atomic, "execute": staticmethod(fn), "__doc__": fn.__doc__,
            "__module__": fn.__module__,
        })
        return app.register_task(cls())

    return register


@worker_process_init.connect
def _child_init(**_: Any) -> None:
    """Each pool child: its share of CPU threads, its trace exporter, the engines to keep warm, its
    hash-bank index."""
    from django.conf import settings

    from apps.moderation import bankmatch
    from mediacommon.tracing import configure
    from workers.bankindex import BankIndex

    limit_threads()
    configure("mediaintel-worker", settings.MEDIAINTEL_OTLP_ENDPOINT,
              sample_ratio=settings.MEDIAINTEL_TRACE_SAMPLE_RATIO)
    preload()
    bankmatch.install_index(BankIndex())  # loaded on its first lookup


@worker_process_shutdown.connect
def _child_exit(pid: int | None = None, **_: Any) -> None:
    """A pool child leaving: flush its spans, drop its live-gauge metric files."""
    from mediacommon.metrics import mark_process_dead
    from mediacommon.tracing import shutdown

    shutdown()
    mark_process_dead(pid or os.getpid())
