"""Backpressure: per-queue depth limits for dispatch, a backlog limit for ingestion.

A stage whose queue holds ``MEDIAINTEL_QUEUE_LIMIT_<QUEUE>`` messages or more stays
``pending``; ``release_pending`` (beat) sends it once the queue drains. When the backlog
of stages waiting to run passes ``MEDIAINTEL_MAX_BACKLOG`` the system is saturated: the
upload API answers 503 with ``Retry-After`` and the ``ingest`` command waits.
"""

from __future__ import annotations

import time

from django.conf import settings

from apps.pipeline.metrics import queue_depths
from apps.pipeline.models import StageRun, StageStatus

_cache: dict[str, tuple[float, int]] = {}
TTL = 1.0


def queue_depth(queue: str) -> int:
    hit = _cache.get(queue)
    now = time.monotonic()
    if hit and now - hit[0] < TTL:
        return hit[1]
    depths = queue_depths()
    for q, n in depths.items():
        _cache[q] = (now, n)
    return depths.get(queue, 0)


def queue_has_room(queue: str) -> bool:
    limit = settings.MEDIAINTEL_QUEUE_LIMITS.get(queue, 500)
    depth = queue_depth(queue)
    if depth < limit:
        _cache[queue] = (_cache.get(queue, (time.monotonic(), 0))[0], depth + 1)  # count what we are sending
        return True
    return False


def backlog() -> int:
    return StageRun.objects.filter(status__in=[StageStatus.PENDING, StageStatus.QUEUED], current=True).count()


def saturation() -> str | None:
    """A reason when new work must wait, else None."""
    limit = settings.MEDIAINTEL_MAX_BACKLOG
    n = backlog()
    if n >= limit:
        return f"{n} stages waiting, limit {limit}"
    return None
