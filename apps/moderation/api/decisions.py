"""Decisions and appeals: uploaders read the decisions on their assets and appeal them; moderators decide appeals."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import django_filters as df
from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.errors import ApiError
from apps.core.filters import TimestampFilter
from apps.core.negotiation import JsonErrors, KnownFormatNegotiation
from apps.core.roles import IsModerator
from apps.core.schema import generating_schema
from apps.moderation import actions, dsa
from apps.moderation import serializers as s
from apps.moderation.api._common import (
    CsvRenderer,
    ServiceErrors,
    _is_moderator,
    _valid,
)
from apps.moderation.models import (
    Appeal,
    Decision,
)


class DecisionFilter(df.FilterSet):
    created_after = TimestampFilter(field_name="created_at", lookup_expr="gte")
    created_before = TimestampFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Decision
        fields = ["asset", "outcome", "automated_decision"]  # not the moderator: uploaders must not learn it


class DecisionViewSet(JsonErrors, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Decisions with their statement of reasons. Uploaders see the decisions on their own assets."""

    serializer_class = s.DecisionSerializer
    filterset_class = DecisionFilter
    ordering_fields = ["created_at", "outcome"]
    ordering = ["-created_at"]
    queryset = Decision.objects.none()

    def get_queryset(self) -> QuerySet[Decision]:
        if generating_schema(self):
            return Decision.objects.none()
        qs = Decision.objects.select_related("moderator", "policy_version__policy").prefetch_related("appeals")
        if not _is_moderator(self.request):
            qs = qs.filter(asset__uploader=self.request.user)
        return qs

    def get_serializer_context(self) -> dict[str, Any]:
        moderator_view = not generating_schema(self) and _is_moderator(self.request)
        return {**super().get_serializer_context(), "moderator_view": moderator_view}

    @extend_schema(
        parameters=[OpenApiParameter("from", OpenApiTypes.DATE, required=True, description="first day (UTC), included"),
                    OpenApiParameter("to", OpenApiTypes.DATE, required=True,
                                     description="last day (UTC), included. A range after `from` … `to` of more "
                                                 "than 366 days comes in pages of 366 days (`Link` rel=next); "
                                                 "`to` before `from` is an empty range"),
                    OpenApiParameter("format", OpenApiTypes.STR, enum=["json", "csv"],
                                     description="Or a `.csv`/`.json` suffix, or the Accept header."),
                    OpenApiParameter("territory", {"type": "array", "minItems": 1,
                                                   "items": {"type": "string", "enum": list(dsa.EEA_COUNTRIES)}},
                                     style="form", explode=False,
                                     description="comma-separated EU/EEA codes for territorial_scope (default all)")],
        responses={(200, "application/json"): {
                       "type": "object", "required": ["statements"],
                       "properties": {"statements": {"type": "array", "items": {"type": "object"},
                                                     "description": "DSA Transparency Database statements"}}},
                   (200, "text/csv"): OpenApiTypes.STR})
    @action(detail=False, methods=["get"], url_path="statements-of-reasons", permission_classes=[IsModerator],
            renderer_classes=[JSONRenderer, CsvRenderer], content_negotiation_class=KnownFormatNegotiation,
            pagination_class=None, filter_backends=[])
    def statements_of_reasons(self, request: Request, format: str | None = None) -> Response:
        """Statements of reasons of the restricting decisions in a range of days, in the layout of the EU DSA
        Transparency Database (JSON: the body of its bulk endpoint; CSV: one column per field). Moderators.

        One answer covers at most 366 days: a longer range answers its first 366 days and links the
        rest (``Link: <…>; rel="next"``; the JSON stays the DSA bulk body), so nothing is dropped. A
        range whose ``to`` is before its ``from`` holds no day: no statements (as every time filter).
        """
        from apps.moderation import dsa, sor_export

        missing = [p for p in ("from", "to") if not request.query_params.get(p)]
        if missing:
            raise ApiError(f"Missing parameter(s): {', '.join(missing)} (YYYY-MM-DD).", code="invalid",
                           detail={p: ["required"] for p in missing})
        try:
            start = dsa.parse_day(request.query_params["from"], "from")
            end = dsa.parse_day(request.query_params["to"], "to")
            territory = request.query_params.get("territory", ",".join(dsa.EEA_COUNTRIES)).split(",")
            sor_export.check_territories(territory)
            # a page is at most MAX_DAYS days; the rest of a longer range is linked, never dropped
            last = start + timedelta(days=sor_export.MAX_DAYS - 1) if (end - start).days >= sor_export.MAX_DAYS \
                else end
            statements = sor_export.statements_between(start, last, territorial_scope=territory) \
                if start <= end else []  # a reversed range holds no day
        except ValueError as e:
            raise ApiError(str(e), code="invalid") from None
        nxt = None
        if start <= last < end:
            query = request.query_params.copy()
            query["from"] = (last + timedelta(days=1)).isoformat()
            nxt = request.build_absolute_uri(f"{request.path}?{query.urlencode()}")
        fmt = request.accepted_renderer.format
        resp = Response(dsa.to_csv(statements) if fmt == "csv" else {"statements": statements})
        resp["Content-Disposition"] = f'attachment; filename="statements-of-reasons-{start}-{last}.{fmt}"'
        if nxt:
            resp["Link"] = f'<{nxt}>; rel="next"'
        return resp


class AppealFilter(df.FilterSet):
    class Meta:
        model = Appeal
        fields = ["state", "decision"]


class AppealViewSet(ServiceErrors, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
                    viewsets.GenericViewSet):
    """Appeals: the uploader contests a decision on their asset; a different moderator decides."""

    serializer_class = s.AppealSerializer
    filterset_class = AppealFilter
    ordering_fields = ["created_at", "decided_at", "state"]
    ordering = ["created_at"]
    queryset = Appeal.objects.none()

    def get_queryset(self) -> QuerySet[Appeal]:
        if generating_schema(self):
            return Appeal.objects.none()
        qs = Appeal.objects.select_related("decision", "appellant", "decided_by")
        if not _is_moderator(self.request):
            qs = qs.filter(appellant=self.request.user)
        return qs

    def get_permissions(self) -> list[Any]:
        perms = super().get_permissions()
        if self.action == "decide":
            perms.append(IsModerator())
        return perms

    def get_serializer_context(self) -> dict[str, Any]:
        moderator_view = not generating_schema(self) and _is_moderator(self.request)
        return {**super().get_serializer_context(), "moderator_view": moderator_view}

    @extend_schema(request=s.AppealCreateSerializer, responses={201: s.AppealSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Appeal a decision on your own asset, saying why it is wrong."""
        data = _valid(s.AppealCreateSerializer, request.data)
        decisions = Decision.objects.select_related("asset")
        if not _is_moderator(request):
            decisions = decisions.filter(asset__uploader=request.user)
        decision = decisions.filter(pk=data["decision"]).first()
        if decision is None:
            raise ApiError("No such decision.", code="not_found", status_code=404)
        appeal = actions.open_appeal(decision, request.user, data["reason"])
        return Response(self.get_serializer(appeal).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.AppealDecideSerializer, responses={200: s.AppealSerializer,
                                                                403: OpenApiResponse(description="Same moderator")})
    @action(detail=True, methods=["post"])
    def decide(self, request: Request, pk: str | None = None) -> Response:
        """Uphold or overturn (a new decision with the opposite outcome); not by the moderator who decided."""
        appeal = self.get_object()
        data = _valid(s.AppealDecideSerializer, request.data)
        appeal = actions.decide_appeal(appeal.pk, request.user, upheld=data["upheld"], note=data["note"])
        return Response(self.get_serializer(appeal).data)


