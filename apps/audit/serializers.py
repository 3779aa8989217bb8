"""API representations of the audit trail."""

from __future__ import annotations

from rest_framework import serializers

from apps.audit.models import AuditEvent


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = ["id", "created_at", "actor_type", "actor_id", "actor_label", "verb", "target_type", "target_id",
                  "payload", "request_id", "prev_hash", "hash"]
        read_only_fields = fields


class AuditVerifySerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    checked = serializers.IntegerField()
    problems = serializers.ListField(child=serializers.CharField())
