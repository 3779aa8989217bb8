"""API representations of assets."""

from __future__ import annotations

import json
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.assets import links
from apps.assets.models import MediaAsset
from apps.core.fields import refuse_nul
from apps.pipeline.serializers import stages_of


class AssetSerializer(serializers.ModelSerializer):
    uploader = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    content_url = serializers.SerializerMethodField()

    class Meta:
        model = MediaAsset
        fields = ["id", "kind", "title", "filename", "external_id", "metadata", "sha256", "size", "mime_type",
                  "duration", "width", "height", "fps", "video_codec", "audio_codec", "sample_rate", "channels",
                  "frame_count", "has_audio", "status", "moderation_state", "uploader", "source",
                  "created_at", "updated_at", "processed_at", "content_url"]
        read_only_fields = fields

    def get_content_url(self, obj: MediaAsset) -> str:
        return links.content_url(obj.pk)


class AssetDetailSerializer(AssetSerializer):
    probe = serializers.JSONField(read_only=True)
    stages = serializers.SerializerMethodField()

    class Meta(AssetSerializer.Meta):
        fields = [*AssetSerializer.Meta.fields, "probe", "stages"]
        read_only_fields = fields

    def get_stages(self, obj: MediaAsset) -> list[dict[str, Any]]:
        return stages_of(obj)


@extend_schema_field({"type": "object", "additionalProperties": True,
                      "description": "A JSON object (its JSON text in a form part), at most 64 KiB."})
class JsonObjectField(serializers.JSONField):
    """A JSON object, given as JSON or (in a form) as its JSON text; the serializer's
    ``validate_<name>`` refuses anything else."""


class UploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="The media file (multipart).", allow_empty_file=True)
    title = serializers.CharField(required=False, allow_blank=True, max_length=500)
    external_id = serializers.CharField(required=False, allow_blank=True, max_length=255)
    metadata = JsonObjectField(required=False, help_text="A JSON object (or its JSON text).")

    def validate_metadata(self, value: Any) -> dict[str, Any]:
        if isinstance(value, str) and not value.strip():
            return {}  # an empty form field or query parameter: none (as for any other form value)
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise serializers.ValidationError("metadata must be a JSON object") from None
        if not isinstance(value, dict):
            raise serializers.ValidationError("metadata must be a JSON object")
        refuse_nul(value)  # here, not in the field: a form's JSON text is parsed only here
        if len(json.dumps(value)) > 64 * 1024:
            raise serializers.ValidationError("metadata is limited to 64 KiB")
        return value
