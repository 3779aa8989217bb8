"""Queue ``moderate``: webhook deliveries; ``maintenance``: the delivery sweep and hash-bank scans."""

from __future__ import annotations

from typing import Any

from django.db import close_old_connections

from mediaintel.celery import app


@app.task(name="mediaintel.webhooks.deliver", ignore_result=True, acks_late=True, soft_time_limit=120,
          time_limit=150)
def deliver(delivery_id: int) -> dict[str, Any]:
    """Send one outbox delivery (no-op when it is not due or already sent); failures reschedule it."""
    from apps.moderation.webhooks import deliver as send_one

    close_old_connections()
    try:
        return send_one(int(delivery_id))
    finally:
        close_old_connections()


@app.task(name="mediaintel.webhooks.sweep", ignore_result=True, soft_time_limit=60, time_limit=90)
def sweep() -> int:
    """Publish pending deliveries whose message was lost (beat)."""
    from apps.moderation.webhooks import sweep as run_sweep

    return run_sweep()


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
