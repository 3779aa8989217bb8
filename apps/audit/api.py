"""The audit trail API: the whole hash-chained log (admins) and one asset's events (moderators)."""

from __future__ import annotations

from typing import Any

import django_filters as df
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.assets.models import MediaAsset
from apps.audit.models import AuditEvent
from apps.audit.serializers import AuditEventSerializer, AuditVerifySerializer
from apps.audit.services import verify
from apps.core.filters import TimestampFilter
from apps.core.roles import IsAdmin, IsModerator
from apps.core.schema import UUID_RE, generating_schema


class AuditFilter(df.FilterSet):
    since = TimestampFilter(field_name="created_at", lookup_expr="gte")
    until = TimestampFilter(field_name="created_at", lookup_expr="lt")
    verb_prefix = df.CharFilter(field_name="verb", lookup_expr="startswith")

    class Meta:
        model = AuditEvent
        fields = ["target_type", "target_id", "verb", "actor_type", "actor_id", "request_id"]


class AssetAuditFilter(df.FilterSet):
    since = TimestampFilter(field_name="created_at", lookup_expr="gte")
    until = TimestampFilter(field_name="created_at", lookup_expr="lt")
    verb_prefix = df.CharFilter(field_name="verb", lookup_expr="startswith")

    class Meta:
        model = AuditEvent
        fields = ["verb", "actor_type"]


class AuditEventViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The append-only, hash-chained audit trail (admins), newest first."""

    permission_classes = [IsAdmin]
    serializer_class = AuditEventSerializer
    filterset_class = AuditFilter
    ordering_fields = ["id", "created_at"]
    ordering = ["-id"]
    queryset = AuditEvent.objects.none()

    def get_queryset(self) -> QuerySet[AuditEvent]:
        if generating_schema(self):
            return AuditEvent.objects.none()
        return AuditEvent.objects.order_by("-id")

    @extend_schema(responses=AuditVerifySerializer, filters=False)
    @action(detail=False, methods=["get"], filterset_class=None, pagination_class=None)
    def verify(self, request: Request) -> Response:
        """Walk the whole chain: every hash recomputes and links to its predecessor."""
        r = verify()
        return Response({"ok": r.ok, "checked": r.checked, "problems": r.problems[:1000]})


@extend_schema_view(list=extend_schema(parameters=[OpenApiParameter("asset_id", OpenApiTypes.UUID,
                                                                    OpenApiParameter.PATH)]))
class AssetAuditViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """The audit events of one asset (moderators), oldest first."""

    permission_classes = [IsModerator]
    serializer_class = AuditEventSerializer
    filterset_class = AssetAuditFilter
    ordering_fields = ["id", "created_at"]
    ordering = ["id"]
    queryset = AuditEvent.objects.none()

    def get_queryset(self) -> QuerySet[AuditEvent]:
        if generating_schema(self):
            return AuditEvent.objects.none()
        asset = get_object_or_404(MediaAsset, pk=self.kwargs["asset_id"])
        return AuditEvent.objects.filter(target_type="asset", target_id=str(asset.pk)).order_by("id")




def register(router: Any) -> None:
    """Mount the audit API on the /api/v1/ router."""
    router.register("audit", AuditEventViewSet, basename="audit")
    router.register(rf"assets/(?P<asset_id>{UUID_RE})/audit", AssetAuditViewSet, basename="asset-audit")
