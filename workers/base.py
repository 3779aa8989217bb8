"""PipelineTask: the base of every stage task.

Life of a message: claim the StageRun with a conditional UPDATE (a finished stage or one
held by a live worker makes the message a no-op), heartbeat while running, run the stage,
write results and mark done in one transaction (successors are dispatched on commit).
Transient errors retry with exponential backoff and jitter up to the stage's attempts;
permanent errors, and the last transient one, make the stage ``dead`` with a DeadLetter.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from celery import Task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import (
    DatabaseError,
    InterfaceError,
    OperationalError,
    close_old_connections,
    connection,
    transaction,
)

from apps.core.logging import task_id as task_id_var
from workers.engines.base import EngineUnavailable, PermanentEngineError, TransientEngineError

log = logging.getLogger("mediaintel.stage")

#: Benchmarks of orchestration alone run every stage as a no-op (never set in production).
NOOP_STAGES = os.environ.get("MEDIAINTEL_NOOP_STAGES") == "1"

TRANSIENT = (TransientEngineError, OperationalError, InterfaceError, ConnectionError, TimeoutError,
             SoftTimeLimitExceeded, OSError)


class StageSkipped(Exception):
    """The stage does not apply (no audio track, engine not configured): ``skipped`` with this reason."""


class PermanentStageError(Exception):
    """Will never succeed as is (corrupt media, missing weights): dead at once."""


@dataclass
class StageContext:
    """What a stage implementation gets: its run, its asset, and the media on local disk."""

    run: Any
    asset: Any
    _tmp: list[str] = field(default_factory=list)

    def save(self, model: type, rows: list[dict[str, Any]], stage: str | None = None) -> int:
        """Replace this stage's rows of ``model`` (idempotent), labelled with the run's engine version."""
        from apps.insights.services import replace

        return replace(model, asset_id=self.asset.pk, stage=stage or self.run.stage, engine=self.run.engine,
                       engine_version=self.run.engine_version, rows=rows)

    def media_path(self) -> str:
        """A local path to the original bytes: the blob itself for local storage, else a copy in the
        host's bounded blob cache that stays on disk until this task ends (workers/blobcache.py)."""
        from apps.assets import storage
        from workers import blobcache

        local = storage.local_path(self.asset.storage_key)
        if local and os.path.exists(local):
            return local
        return blobcache.media_path(self.asset.sha256, self.asset.storage_key)


class _Heartbeat(threading.Thread):
    """Extends the stage's lease every third of it while the stage runs."""

    def __init__(self, run_id: int, task_id: str) -> None:
        super().__init__(daemon=True, name=f"heartbeat-{run_id}")
        self.run_id, self.task_id = run_id, task_id
        self.stop = threading.Event()
        self.lost = False

    def run(self) -> None:
        from apps.pipeline.services import heartbeat

        every = max(settings.MEDIAINTEL_STAGE_LEASE / 3, 0.5)
        try:
            while not self.stop.wait(every):
                try:
                    if not heartbeat(self.run_id, self.task_id):
                        self.lost = True
                        return
                except DatabaseError:
                    log.warning("heartbeat failed for run %s", self.run_id)
        finally:
            connection.close()


def _inject_fault(ctx: StageContext, stage: str) -> None:
    """Chaos hook for reliability tests, off unless ``MEDIAINTEL_FAULT_INJECTION=1``.

    ``asset.metadata["_faults"][stage]`` may hold ``{"sleep": s}`` (every attempt),
    ``{"sleep_first": s}`` (first attempt only), ``{"transient": n}`` (fail the first n attempts)
    or ``{"permanent": true}`` (until ``_faults`` is cleared).
    """
    if os.environ.get("MEDIAINTEL_FAULT_INJECTION") != "1":
        return
    from apps.assets.models import MediaAsset

    faults = (MediaAsset.objects.values_list("metadata", flat=True).get(pk=ctx.asset.pk) or {}).get("_faults", {})
    f = faults.get(stage) or {}
    if f.get("sleep"):
        time.sleep(float(f["sleep"]))
    if f.get("sleep_first") and ctx.run.attempts == 1:
        time.sleep(float(f["sleep_first"]))
    if ctx.run.attempts <= int(f.get("transient", 0)):
        raise TransientEngineError(f"injected transient fault (attempt {ctx.run.attempts})")
    if f.get("permanent"):
        raise PermanentStageError("injected permanent fault")


class PipelineTask(Task):
    """Base class of stage tasks; subclasses set ``stage`` and implement :meth:`execute`."""

    abstract = True
    acks_late = True
    reject_on_worker_lost = True
    stage: str = ""

    def execute(self, ctx: StageContext) -> dict[str, Any]:
        """Compute and store the stage's results (inside the transaction given); return a summary."""
        raise NotImplementedError

    def run(self, run_id: int) -> str:
        from apps.pipeline import services

        close_old_connections()
        tid = self.request.id or ""
        token = task_id_var.set(tid)
        worker = f"{socket.gethostname()}:{os.getpid()}"
        try:
            claimed = services.claim(run_id, worker, tid)
            if claimed is None:
                log.info("stage run %s not claimable (finished or held by a live worker): no-op", run_id)
                return "noop"
            ctx = StageContext(run=claimed.run, asset=claimed.asset)
            return self._run_claimed(ctx, tid)
        finally:
            task_id_var.reset(token)
            close_old_connections()

    def _run_claimed(self, ctx: StageContext, tid: str) -> str:
        from apps.pipeline import services

        run_id = ctx.run.pk
        beat = _Heartbeat(run_id, tid)
        beat.start()
        t0 = time.perf_counter()
        try:
            _inject_fault(ctx, self.stage)
            with transaction.atomic():
                summary = {"noop": True} if NOOP_STAGES else (self.execute(ctx) or {})
                summary.setdefault("seconds", round(time.perf_counter() - t0, 3))
                if beat.lost or not services.complete(run_id, tid, summary):
                    transaction.set_rollback(True)
                    log.warning("stage %s run %s was taken over; results discarded", self.stage, run_id)
                    return "lost"
            log.info("stage done", extra={"stage": self.stage, "run": run_id, "asset": str(ctx.asset.pk),
                                          "seconds": round(time.perf_counter() - t0, 3),
                                          "attempt": ctx.run.attempts})
            return "done"
        except (StageSkipped, EngineUnavailable) as e:
            services.skip(run_id, tid, str(e))
            log.info("stage %s skipped: %s", self.stage, e)
            return "skipped"
        except (PermanentStageError, PermanentEngineError) as e:
            services.bury(run_id, tid, e, traceback.format_exc(), permanent=True)
            return "dead"
        except TRANSIENT as e:
            tb = traceback.format_exc()
            close_old_connections()
            delay = services.schedule_retry(run_id, tid, e, tb)
            if delay is None:
                services.bury(run_id, tid, e, tb, permanent=False)
                return "dead"
            log.warning("stage %s transient failure (%s); retry in %.1fs", self.stage, e, delay)
            services.send(self.stage, ctx.run.queue, run_id, countdown=delay)
            return "retrying"
        except Exception as e:  # an unexpected bug: never retried blindly, always visible
            services.bury(run_id, tid, e, traceback.format_exc(), permanent=True)
            return "dead"
        finally:
            beat.stop.set()
            beat.join(timeout=5)
