"""Assets in the Django admin: read-only (ingest and deletion go through the API and commands, audited)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from apps.assets.models import MediaAsset


@admin.register(MediaAsset)
class MediaAssetAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "title", "filename", "status", "moderation_state", "uploader", "created_at"]
    list_filter = ["kind", "status", "moderation_state", "source"]
    search_fields = ["title", "filename", "sha256", "external_id"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
