"""Assets in the Django admin: read-only (ingest and deletion go through the API and commands, audited)."""

from __future__ import annotations

from django.contrib import admin

from apps.assets.models import MediaAsset
from apps.core.admin import ReadOnlyAdmin


@admin.register(MediaAsset)
class MediaAssetAdmin(ReadOnlyAdmin):
    list_display = ["id", "kind", "title", "filename", "status", "moderation_state", "uploader", "created_at"]
    list_filter = ["kind", "status", "moderation_state", "source"]
    search_fields = ["title", "filename", "sha256", "external_id"]
    date_hierarchy = "created_at"
