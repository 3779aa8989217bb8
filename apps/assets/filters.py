"""Filters for ``GET /api/v1/assets/``."""

from __future__ import annotations

import django_filters as df

from apps.assets.models import Kind, MediaAsset, ModerationState, Source, Status
from apps.core.filters import TimestampFilter


class AssetFilter(df.FilterSet):
    kind = df.ChoiceFilter(choices=Kind.choices)
    status = df.ChoiceFilter(choices=Status.choices)
    moderation_state = df.ChoiceFilter(choices=ModerationState.choices)
    source = df.ChoiceFilter(choices=Source.choices)
    created_after = TimestampFilter(field_name="created_at", lookup_expr="gte")
    created_before = TimestampFilter(field_name="created_at", lookup_expr="lt")
    q = df.CharFilter(field_name="title", lookup_expr="icontains", label="Text in the title")
    uploader = df.CharFilter(field_name="uploader__username", help_text="The uploader's username")
    external_id = df.CharFilter()
    sha256 = df.CharFilter()

    class Meta:
        model = MediaAsset
        fields = ["kind", "status", "moderation_state", "source", "external_id", "sha256", "uploader"]
