"""Queue ``maintenance``: the domain-event relay (beat, every ``MEDIAINTEL_EVENTS_RELAY_INTERVAL`` s).

The bus client is made once per worker process and kept (a NATS connection, a Kafka producer);
one that failed is dropped so the next pass connects afresh.
"""

from __future__ import annotations

import contextlib
from typing import Any

from django.db import close_old_connections

from apps.events import relay as outbox
from mediaintel.celery import app
from workers import eventbus

_bus: Any = None


def _get_bus() -> Any:
    global _bus
    if _bus is None:
        _bus = eventbus.from_settings()
    return _bus


@app.task(name="mediaintel.events.relay", ignore_result=True, soft_time_limit=60, time_limit=90)
def relay() -> dict[str, Any]:
    """Send the committed outbox events to the bus in order (one pass at a time: a pg advisory lock),
    then prune relayed events past their retention."""
    global _bus
    close_old_connections()
    try:
        bus = _get_bus()
        if bus is None:  # MEDIAINTEL_EVENTS_BUS=none: events stay in the outbox until pruned
            return {"sent": 0, "pruned": outbox.prune(unsent=True)}
        sent = outbox.relay(bus)
        pruned = outbox.prune() if sent == 0 else 0
        return {"sent": sent, "pruned": pruned}
    except Exception:
        if _bus is not None:
            with contextlib.suppress(Exception):  # already broken
                _bus.close()
            _bus = None
        raise
    finally:
        close_old_connections()
