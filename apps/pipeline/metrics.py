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


def queue_depths() -> dict[str, int]:
    """Messages waiting in each queue (Redis and AMQP alike, through kombu); -1 when unreachable."""
    from kombu import Connection

    out: dict[str, int] = {}
    try:
        with Connection(settings.BROKER_URL, connect_timeout=2) as conn:
            ch = conn.default_channel
            for q in QUEUES:
                try:
                    out[q] = ch.queue_declare(queue=q, passive=True).message_count
                except Exception:  # a queue not declared yet is empty
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
