"""MediaAsset: one row per uploader and distinct content (sha256), over one shared content-addressed blob.

Two uploaders of the same bytes each get their own asset (their own name, title, metadata and
moderation state); neither learns that the other exists. The blob and the files derived from
the content (``derived/<sha>``) are stored once and removed when no asset references them.
Unowned assets (ingested by a command) are unique by content.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.core.models import UUIDModel


class Kind(models.TextChoices):
    VIDEO = "video"
    AUDIO = "audio"
    IMAGE = "image"
    TEXT = "text"


class Status(models.TextChoices):
    QUEUED = "queued"
    PROCESSING = "processing"
    READY = "ready"
    FAILED = "failed"


class ModerationState(models.TextChoices):
    PENDING = "pending"
    APPROVED = "approved"
    IN_REVIEW = "in_review"
    BLOCKED = "blocked"


class Source(models.TextChoices):
    API = "api"
    COMMAND = "command"


class MediaAsset(UUIDModel):
    kind = models.CharField(max_length=8, choices=Kind.choices, db_index=True)
    sha256 = models.CharField(max_length=64, db_index=True)
    size = models.BigIntegerField()
    mime_type = models.CharField(max_length=100)
    filename = models.CharField(max_length=255, blank=True)
    title = models.CharField(max_length=500, blank=True)
    external_id = models.CharField(max_length=255, blank=True, db_index=True)
    metadata = models.JSONField(default=dict, blank=True)
    storage_key = models.CharField(max_length=200)
    # probe results
    duration = models.FloatField(null=True, blank=True)
    width = models.IntegerField(null=True, blank=True)
    height = models.IntegerField(null=True, blank=True)
    fps = models.FloatField(null=True, blank=True)
    video_codec = models.CharField(max_length=50, blank=True)
    audio_codec = models.CharField(max_length=50, blank=True)
    sample_rate = models.IntegerField(null=True, blank=True)
    channels = models.IntegerField(null=True, blank=True)
    frame_count = models.BigIntegerField(null=True, blank=True)
    has_audio = models.BooleanField(default=False)
    probe = models.JSONField(default=dict, blank=True)
    # lifecycle
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED, db_index=True)
    moderation_state = models.CharField(max_length=12, choices=ModerationState.choices,
                                        default=ModerationState.PENDING, db_index=True)
    uploader = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="assets")
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.API)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["kind", "status", "-created_at"])]
        constraints = [
            models.UniqueConstraint(fields=["sha256", "uploader"], condition=models.Q(uploader__isnull=False),
                                    name="asset_content_per_uploader"),
            models.UniqueConstraint(fields=["sha256"], condition=models.Q(uploader__isnull=True, source="command"),
                                    name="asset_content_unowned"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.title or self.filename or self.sha256[:12]}"


class IdempotencyRecord(models.Model):
    """The first response to a request carrying an ``Idempotency-Key`` (per user)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    key = models.CharField(max_length=255)
    status_code = models.PositiveSmallIntegerField()
    body = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="idempotency_user_key")]
