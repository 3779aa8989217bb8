"""What an operator sees of the pipeline's health: stalled stages, queue ages, queues without consumers.

Shared by ``manage.py pipeline status``, ``/metrics``, the readiness check and the console.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, Min, Q
from django.utils import timezone

from apps.pipeline.metrics import queue_depths
from apps.pipeline.models import IN_FLIGHT, StageRun, StageStatus, WorkerPresence
from mediacommon.routing import QUEUES


def _stall_bounds() -> dict[str, tuple[str, timedelta]]:
    """Status → (the timestamp it is judged by, how long past it the stage counts as stalled): the
    criteria the reconciler acts on (apps/pipeline/reconcile.py)."""
    lease = timedelta(seconds=settings.MEDIAINTEL_STAGE_LEASE)
    return {StageStatus.QUEUED: ("queued_at", timedelta(seconds=settings.MEDIAINTEL_STAGE_REDISPATCH_AFTER)),
            StageStatus.RUNNING: ("heartbeat_at", lease),
            StageStatus.RETRYING: ("next_attempt_at", lease)}


def stalled_q(now: datetime | None = None) -> Q:
    """Stage runs waiting longer than expected: ``queued`` past the re-dispatch bound, ``running``
    with a lapsed lease, ``retrying`` overdue by a lease."""
    now = now or timezone.now()
    q = Q(pk__in=[])
    for status, (stamp, bound) in _stall_bounds().items():
        q |= Q(status=status, **{f"{stamp}__lt": now - bound})
    return q


def stalled_since(run: Any) -> datetime | None:
    """Since when a stage run has been stalled (None when it is not)."""
    stamp, bound = _stall_bounds().get(run.status, (None, None))
    at = getattr(run, stamp) if stamp else None
    if at is None or at + bound > timezone.now():
        return None
    return at + bound


@dataclass
class QueueHealth:
    """One queue: messages waiting, live consumers, the oldest waiting and running stage, stalled ones."""

    queue: str
    depth: int = 0  # -1: the broker did not answer
    consumers: list[str] = field(default_factory=list)
    oldest_queued_s: float | None = None
    oldest_running_s: float | None = None  # since its last heartbeat
    stalled: int = 0

    @property
    def unconsumed(self) -> bool:
        """Messages wait and no live worker consumes the queue."""
        return self.depth > 0 and not self.consumers


def live_consumers() -> dict[str, list[str]]:
    """Queue → names of workers seen within three presence intervals."""
    seen = timezone.now() - timedelta(seconds=3 * settings.MEDIAINTEL_WORKER_PRESENCE_INTERVAL)
    out: dict[str, list[str]] = {}
    for name, queues in WorkerPresence.objects.filter(seen_at__gte=seen).values_list("name", "queues"):
        for q in queues:
            out.setdefault(q, []).append(name)
    return out


def queue_health() -> dict[str, QueueHealth]:
    """Every queue's health: one grouped query over the in-flight stages, the broker's depths, presence."""
    now = timezone.now()
    depths = queue_depths()
    consumers = live_consumers()
    out = {q: QueueHealth(q, depth=depths.get(q, 0), consumers=sorted(consumers.get(q, []))) for q in QUEUES}
    rows = (StageRun.objects.filter(status__in=IN_FLIGHT).values("queue").annotate(
        queued=Min("queued_at", filter=Q(status=StageStatus.QUEUED)),
        running=Min("heartbeat_at", filter=Q(status=StageStatus.RUNNING)),
        stalled=Count("id", filter=stalled_q(now))))
    for r in rows:
        h = out.setdefault(r["queue"], QueueHealth(r["queue"]))
        h.oldest_queued_s = (now - r["queued"]).total_seconds() if r["queued"] else None
        h.oldest_running_s = (now - r["running"]).total_seconds() if r["running"] else None
        h.stalled = r["stalled"]
    return out


def unconsumed_queues() -> list[str]:
    """Queues that hold messages while no live worker consumes them (a readiness warning)."""
    return [q for q, h in queue_health().items() if h.unconsumed]
