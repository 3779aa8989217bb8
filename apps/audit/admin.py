"""The audit trail in the Django admin: read-only (the table refuses UPDATE and DELETE anyway)."""

from __future__ import annotations

from django.contrib import admin

from apps.audit.models import AuditEvent
from apps.core.admin import ReadOnlyAdmin


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["id", "created_at", "actor_label", "verb", "target_type", "target_id"]
    list_filter = ["verb", "actor_type", "target_type"]
    search_fields = ["target_id", "actor_label", "request_id"]
    date_hierarchy = "created_at"
