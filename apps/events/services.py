"""Writing domain events: :func:`publish` adds one to the outbox in the caller's transaction.

The relay (:mod:`apps.events.relay`) sends committed events to the bus; an event of a
transaction that rolls back is never seen by anyone. Transactional consumers (the webhook
fan-out, :func:`apps.moderation.services.webhook_consumer`) receive each event's envelope
inside the same transaction, so what they write commits or rolls back with it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

from apps.events.models import OutboxEvent
from mediacommon import events as catalog

Consumer = Callable[[dict[str, Any]], None]
_consumers: list[Consumer] = []


def subscribe(consumer: Consumer) -> None:
    """Register a consumer called with every envelope inside the publishing transaction."""
    if consumer not in _consumers:
        _consumers.append(consumer)


def publish(event_type: str, data: dict[str, Any], *, asset_id: Any = None) -> OutboxEvent:
    """Write ``event_type`` (a type of ``mediacommon.events``) with ``data`` to the outbox.

    Call inside the transaction that makes the change the event reports, after the change.
    ``data`` is made JSON-plain here (UUIDs and datetimes become strings).
    """
    version = catalog.version_of(event_type)
    plain = json.loads(json.dumps(data, cls=DjangoJSONEncoder))
    ev = OutboxEvent.objects.create(type=event_type, version=version, asset_id=asset_id, data=plain)
    envelope = ev.envelope()
    for consumer in list(_consumers):
        consumer(envelope)
    return ev
