"""The relay: committed outbox events go to the bus, in order, at least once.

A pass (beat, every ``MEDIAINTEL_EVENTS_RELAY_INTERVAL`` s, on the ``maintenance`` queue)
holds a PostgreSQL advisory lock for its transaction — the lease: only one pass sends at a
time across the deployment, and a relay that dies (its connection closes) frees it at once.
A second relay that finds the lock taken does nothing.

Invariants:

- Events are sent in ``id`` order (which is, per asset, commit order: see
  :class:`apps.events.models.OutboxEvent`), and a pass stops at the first event the bus refuses,
  so a later event of an asset is never sent before an earlier one that is still unsent.
- An event is marked relayed only after the bus acknowledged it, in the pass's transaction. A
  relay that crashes after sending and before committing sends the same events again on the
  next pass: delivery is at least once, and consumers de-duplicate on the event ``id`` (NATS
  JetStream also drops such duplicates itself, by ``Nats-Msg-Id``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from apps.events.models import OutboxEvent

log = logging.getLogger(__name__)

#: pg advisory lock key: one relay pass at a time across the deployment
LOCK_KEY = 0x6D69_6576_6E74


class PublishError(Exception):
    """The bus refused or could not be reached; ``sent`` events (a prefix of the batch) were acknowledged."""

    def __init__(self, message: str, sent: int = 0) -> None:
        super().__init__(message)
        self.sent = sent


class Bus(Protocol):
    """A bus adapter (``workers/eventbus``): ``publish`` sends the envelopes in order, all or
    a prefix (raising :class:`PublishError` with how many were acknowledged)."""

    name: str

    def publish(self, envelopes: list[dict[str, Any]]) -> None: ...

    def close(self) -> None: ...


@dataclass
class RelayResult:
    sent: int = 0
    skipped: str = ""  # why the pass did nothing
    error: str = ""


def relay_once(bus: Bus, batch: int | None = None) -> RelayResult:
    """One pass: send up to ``batch`` unsent events in order; mark those the bus acknowledged."""
    batch = batch or settings.MEDIAINTEL_EVENTS_RELAY_BATCH
    with transaction.atomic():
        with connection.cursor() as cur:
            cur.execute("SELECT pg_try_advisory_xact_lock(%s)", [LOCK_KEY])
            if not cur.fetchone()[0]:
                return RelayResult(skipped="another relay holds the lease")
        rows = list(OutboxEvent.objects.filter(relayed_at__isnull=True).order_by("id")[:batch])
        if not rows:
            return RelayResult()
        result = RelayResult()
        try:
            bus.publish([r.envelope() for r in rows])
            result.sent = len(rows)
        except PublishError as e:
            result.sent, result.error = e.sent, str(e)
            log.warning("event bus %s: %s (%d of %d sent; the rest next pass)", bus.name, e, e.sent, len(rows))
        if result.sent:
            OutboxEvent.objects.filter(pk__in=[r.pk for r in rows[:result.sent]]).update(relayed_at=timezone.now())
    return result


def relay(bus: Bus, *, max_batches: int = 20) -> int:
    """Passes until the outbox is drained, the bus fails, or ``max_batches``; events sent."""
    total = 0
    for _ in range(max_batches):
        r = relay_once(bus)
        total += r.sent
        if r.skipped or r.error or r.sent < settings.MEDIAINTEL_EVENTS_RELAY_BATCH:
            break
    return total


def prune(older_than: float | None = None, *, unsent: bool = False) -> int:
    """Delete relayed events older than the retention (``MEDIAINTEL_EVENTS_OUTBOX_RETENTION`` s);
    with ``unsent`` (no bus configured) also events never relayed that are older than that."""
    keep = older_than if older_than is not None else settings.MEDIAINTEL_EVENTS_OUTBOX_RETENTION
    cutoff = timezone.now() - timedelta(seconds=keep)
    n, _ = OutboxEvent.objects.filter(relayed_at__lt=cutoff).delete()
    if unsent:
        m, _ = OutboxEvent.objects.filter(relayed_at__isnull=True, occurred_at__lt=cutoff).delete()
        n += m
    return n


def backlog() -> int:
    return OutboxEvent.objects.filter(relayed_at__isnull=True).count()
