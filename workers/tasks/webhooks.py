"""Queue ``webhooks``: webhook deliveries; ``maintenance``: the delivery sweep and hash-bank scans.

The deliver task's limits are derived from the request deadline (``MEDIAINTEL_WEBHOOK_TIMEOUT``):
deadline < soft limit < hard limit < lease (:func:`apps.moderation.webhooks.lease_seconds`), so a
send is always over, one way or the other, before its lease lets anyone else take the delivery.
"""

from __future__ import annotations

from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.db import close_old_connections

from apps.moderation import webhooks
from mediaintel.celery import app

DELIVER_SOFT_TIME_LIMIT = webhooks.timeout() + webhooks.SOFT_MARGIN
DELIVER_TIME_LIMIT = webhooks.timeout() + webhooks.HARD_MARGIN


@app.task(name="mediaintel.webhooks.deliver", ignore_result=True, acks_late=True,
          soft_time_limit=DELIVER_SOFT_TIME_LIMIT, time_limit=DELIVER_TIME_LIMIT)
def deliver(delivery_id: int) -> dict[str, Any]:
    """Send one outbox delivery (no-op when it is not due or already sent); failures reschedule it.
    The attempt is counted before the request starts, so a time limit or a lost worker spends it too."""
    close_old_connections()
    try:
        return webhooks.deliver(int(delivery_id))
    except SoftTimeLimitExceeded:
        webhooks.interrupted(int(delivery_id))
        return {"result": "interrupted"}
    finally:
        close_old_connections()


@app.task(name="mediaintel.webhooks.sweep", ignore_result=True, soft_time_limit=60, time_limit=90)
def sweep() -> int:
    """Publish pending deliveries whose message was lost (beat)."""
    return webhooks.sweep()


@app.task(name="mediaintel.moderation.bank_scan", ignore_result=True, acks_late=True, soft_time_limit=600,
          time_limit=660)
def bank_scan(entry_ids: list[int]) -> dict[str, Any]:
    """Retroactive scan for new hash-bank entries: re-moderate existing assets that match (bounded batch;
    the rest is re-enqueued)."""
    from apps.moderation.banks import scan_batch

    close_old_connections()
    try:
        return scan_batch([int(i) for i in entry_ids])
    finally:
        close_old_connections()
