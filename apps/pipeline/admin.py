"""Jobs, stage runs and dead letters in the Django admin: read-only (use `dlq` and `reprocess`)."""

from __future__ import annotations

from django.contrib import admin

from apps.core.admin import ReadOnlyAdmin
from apps.pipeline.models import DeadLetter, Job, StageRun


@admin.register(Job)
class JobAdmin(ReadOnlyAdmin):
    list_display = ["id", "asset", "reason", "status", "started_at", "finished_at"]
    list_filter = ["status", "reason"]
    raw_id_fields = ["asset"]


@admin.register(StageRun)
class StageRunAdmin(ReadOnlyAdmin):
    list_display = ["id", "asset", "stage", "status", "attempts", "engine_version", "worker", "finished_at"]
    list_filter = ["status", "stage", "queue", "current"]
    raw_id_fields = ["asset", "job"]


@admin.register(DeadLetter)
class DeadLetterAdmin(ReadOnlyAdmin):
    list_display = ["id", "stage_run", "error_class", "failed_at", "replayed_at", "discarded"]
    list_filter = ["discarded", "error_class"]
    raw_id_fields = ["stage_run"]
