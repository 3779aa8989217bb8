"""Queue depths from the broker and stage statistics from the database."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Avg, Count, ExpressionWrapper, F, FloatField
from django.db.models.functions import Extract
from django.utils import timezone

from apps.pipeline.models import StageRun
from workers.routing import QUEUES

log = logging.getLogger(__name__)


_redis_clients: dict[str, Any] = {}
#: kombu's Redis transport keeps one list per priority step besides the queue's own.
_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")


def _redis() -> Any:
    url = settings.BROKER_URL
    if url not in _redis_clients:
        import redis

        _redis_clients[url] = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    return _redis_clients[url]


def queue_depths() -> dict[str, int]:
    """Messages waiting in each queue; -1 when the broker is unreachable.

    Redis: one pipelined LLEN per queue and priority list over a reused connection (well under a
    millisecond). AMQP: a passive declare per queue through kombu.
    """
    if settings.BROKER_URL.startswith(("redis://", "rediss://")):
        try:
            pipe = _redis().pipeline(transaction=False)
            for q in QUEUES:
                for suffix in _PRIORITY_SUFFIXES:
                    pipe.llen(q + suffix)
            counts = pipe.execute()
        except Exception as e:
            log.warning("broker unreachable for queue depths: %s", e)
            return {q: -1 for q in QUEUES}
        n = len(_PRIORITY_SUFFIXES)
        return {q: sum(counts[i * n:(i + 1) * n]) for i, q in enumerate(QUEUES)}
    return _amqp_depths()


def _amqp_depths() -> dict[str, int]:
    from kombu import Connection

    out: dict[str, int] = {}
    try:
        with Connection(settings.BROKER_URL, connect_timeout=2) as conn:
            ch = conn.default_channel
            for q in QUEUES:
                try:
                    out[q] = ch.queue_declare(queue=q, passive=True).message_count
                except Exception:  # not declared yet: empty (the failed declare closed the channel)
                    out[q] = 0
                    ch = conn.channel()
    except Exception as e:
        log.warning("broker unreachable for queue depths: %s", e)
        return {q: -1 for q in QUEUES}
    return out


def stage_stats(hours: float = 1.0) -> list[dict[str, Any]]:
    """Per stage and status: count, and for the last ``hours`` the mean run and wait seconds."""
    since = timezone.now() - timedelta(hours=hours)
    run_s = ExpressionWrapper(Extract(F("finished_at") - F("started_at"), "epoch"), output_field=FloatField())
    wait_s = ExpressionWrapper(Extract(F("started_at") - F("queued_at"), "epoch"), output_field=FloatField())
    counts = {(r["stage"], r["status"]): r["n"] for r in
              StageRun.objects.values("stage", "status").annotate(n=Count("id"))}
    recent = {(r["stage"], r["status"]): r for r in
              StageRun.objects.filter(finished_at__gte=since).values("stage", "status").annotate(
                  n=Count("id"), run_s=Avg(run_s), wait_s=Avg(wait_s))}
    rows = []
    for (stage, status), n in sorted(counts.items()):
        r = recent.get((stage, status), {})
        rows.append({"stage": stage, "status": status, "n": n, "recent": r.get("n", 0),
                     "run_s": r.get("run_s"), "wait_s": r.get("wait_s")})
    return rows
