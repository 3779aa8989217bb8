"""AuditEvent: append-only (a PostgreSQL trigger rejects UPDATE/DELETE) and hash-chained."""

from __future__ import annotations

from django.db import models


class AuditEvent(models.Model):
    """One automated or human action. ``hash`` covers the event and the previous event's hash."""

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
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["target_type", "target_id", "id"])]

    def __str__(self) -> str:
        return f"#{self.id} {self.verb} {self.target_type}:{self.target_id} by {self.actor_label}"
