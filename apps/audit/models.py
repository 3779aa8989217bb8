"""AuditEvent: append-only (a PostgreSQL trigger rejects UPDATE/DELETE) and hash-chained.

An event is inserted in its writer's transaction without its chain fields; once that transaction
has committed, it is sealed (``seq``, ``prev_hash``, ``hash`` set, once) in commit order. The
trigger allows exactly that one change: from unsealed to sealed, with every other column unchanged.
"""

from __future__ import annotations

from django.db import models


class AuditEvent(models.Model):
    """One automated or human action. ``hash`` covers the event and the previous event's hash.

    ``seq`` is the event's position in the chain (1, 2, …, no gaps): commit order, not ``id`` order.
    All three chain fields are empty until the event is sealed, and are never changed after.
    """

    class ActorType(models.TextChoices):
        USER = "user"
        SYSTEM = "system"

    id = models.BigAutoField(primary_key=True)
    created_at = models.DateTimeField(db_index=True)
    actor_type = models.CharField(max_length=10, choices=ActorType.choices)
    actor_id = models.CharField(max_length=64, blank=True)
    actor_label = models.CharField(max_length=150)
    verb = models.CharField(max_length=64, db_index=True)
    target_type = models.CharField(max_length=64)
    target_id = models.CharField(max_length=255, db_index=True)  # ids, or names (banks, policies: up to 100)
    payload = models.JSONField(default=dict)
    request_id = models.CharField(max_length=64, blank=True)
    seq = models.BigIntegerField(null=True, unique=True)
    prev_hash = models.CharField(max_length=64, blank=True, default="")
    hash = models.CharField(max_length=64, unique=True, null=True)  # noqa: DJ001 (NULL: unsealed; unique)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["target_type", "target_id", "id"]),
                   models.Index(fields=["id"], condition=models.Q(hash__isnull=True), name="audit_unsealed")]

    def __str__(self) -> str:
        return f"#{self.id} {self.verb} {self.target_type}:{self.target_id} by {self.actor_label}"
