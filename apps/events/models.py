"""The event outbox: one row per domain event, written in the transaction of the state change."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone

from apps.core.timestamps import rfc3339


class OutboxEvent(models.Model):
    """A domain event waiting for (or past) its relay to the bus.

    Invariants: ``id`` is the event's ``seq``; events of one asset are written by transactions
    that serialize on the asset's rows (its job's row lock for pipeline events, the review item's
    or appeal's lock for moderation), so a later event of an asset cannot commit before an
    earlier one, and the relay, which sends committed events in ``id`` order, keeps their order.
    ``relayed_at`` is set only in the transaction that follows the bus's acknowledgement; relayed
    rows are deleted after the retention period.
    """

    id = models.BigAutoField(primary_key=True)
    event_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    type = models.CharField(max_length=64)
    version = models.PositiveSmallIntegerField()
    asset_id = models.UUIDField(null=True, blank=True)
    data = models.JSONField()
    occurred_at = models.DateTimeField(default=timezone.now)
    relayed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["id"], name="outbox_unrelayed", condition=Q(relayed_at__isnull=True)),
            models.Index(fields=["relayed_at"], name="outbox_relayed_at", condition=Q(relayed_at__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.type} {self.asset_id or ''}"

    def envelope(self) -> dict:
        """The event as it travels (the JSON Schema in ``mediacommon.events``)."""
        return {"id": str(self.event_id), "type": self.type, "version": self.version, "seq": self.pk,
                "asset": str(self.asset_id) if self.asset_id else None,
                "occurred_at": rfc3339(self.occurred_at), "data": self.data}
