"""Policies (versioned YAML, activation) and the category taxonomy (admins)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.parsers import JSONParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.errors import ApiError
from apps.core.openapi import AutoSchema, body_required
from apps.core.roles import IsAdmin, IsModerator
from apps.core.schema import generating_schema
from apps.moderation import actions, policy_io, services
from apps.moderation import serializers as s
from apps.moderation.api._common import (
    ServiceErrors,
    TextYamlParser,
    XYamlParser,
    YamlParser,
    _valid,
)
from apps.moderation.models import (
    Category,
    Policy,
    PolicyVersion,
)


class PolicyViewSet(ServiceErrors, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Versioned policies (moderators read; admins write new versions, as JSON or YAML)."""

    serializer_class = s.PolicySerializer
    lookup_field = "name"
    lookup_value_regex = r"[\w.@-]+"
    pagination_class = None
    ordering_fields = ["name", "created_at"]
    ordering = ["name"]
    queryset = Policy.objects.none()
    schema = AutoSchema()

    def get_queryset(self) -> QuerySet[Policy]:
        if generating_schema(self):
            return Policy.objects.none()
        return Policy.objects.select_related("active_version__policy", "active_version__created_by").order_by("name")

    def get_permissions(self) -> list[Any]:
        if self.action == "import_yaml" or (self.action == "versions" and self.request.method == "POST"):
            return [IsAdmin()]
        return [IsModerator()]

    @extend_schema(methods=["GET"], responses=s.PolicyVersionSerializer(many=True))
    @extend_schema(methods=["POST"], request=s.PolicyVersionCreateSerializer,
                   responses={201: s.PolicyVersionSerializer,
                              409: OpenApiResponse(description="A category the rules name is not in the taxonomy "
                                                               "(`unknown_category`)")},
                   examples=[OpenApiExample("Stricter on threats", request_only=True, value={
                       "rules": {"categories": {"harassment/threat": {"review": 0.3, "block": 0.8},
                                                "profanity": {"review": 0.7, "block": 1.01,
                                                              "weights": {"text": 1.0, "speech": 0.8}}},
                                 "bank_on_reject": None},
                       "note": "stricter on threats"})])
    @action(detail=True, methods=["get", "post"], parser_classes=[JSONParser])
    def versions(self, request: Request, name: str | None = None) -> Response:
        """GET: every version, newest first. POST (admin): rules as JSON become the next, active version."""
        policy = self.get_object()
        if request.method == "POST":
            data = _valid(s.PolicyVersionCreateSerializer, request.data)
            v = actions.new_policy_version(data["rules"], user=request.user, note=data["note"], name=policy.name)
            return Response(s.PolicyVersionSerializer(v).data, status=status.HTTP_201_CREATED)
        qs = PolicyVersion.objects.filter(policy=policy).select_related("policy", "created_by").order_by("-number")
        return Response(s.PolicyVersionSerializer(qs, many=True).data)

    @extend_schema(parameters=[OpenApiParameter("version", OpenApiTypes.INT, description="default: the active one")],
                   responses={(200, "application/yaml"): OpenApiResponse(
                       OpenApiTypes.OBJECT, description="The policy document: policy, version, note, created_at "
                                                        "and rules, as YAML")})
    @action(detail=True, methods=["get"])
    def export(self, request: Request, name: str | None = None) -> HttpResponse:
        """The policy (active or ``?version=N``) as a YAML document."""
        policy = self.get_object()
        number = request.query_params.get("version")
        if number:
            try:
                wanted = int(number)
            except ValueError:
                raise ApiError("version must be an integer", code="invalid", detail={"version": ["an integer"]}) \
                    from None
            if not 1 <= wanted < 2**31:  # no such version (and outside the column's range)
                raise NotFound("No such version.")
            v = get_object_or_404(PolicyVersion.objects.select_related("policy"), policy=policy, number=wanted)
        else:
            v = services.active_policy_version(policy.name)
        resp = HttpResponse(policy_io.export_yaml(v), content_type="application/yaml; charset=utf-8")
        resp["Content-Disposition"] = f'attachment; filename="policy-{policy.name}-v{v.number}.yaml"'
        return resp

    @extend_schema(request={"application/yaml": OpenApiTypes.STR, "application/json": s.PolicyImportSerializer},
                   parameters=[OpenApiParameter("name", OpenApiTypes.STR, description="policy name (default: the "
                                                "document's `policy:`, else `default`)"),
                               OpenApiParameter("note", OpenApiTypes.STR)],
                   responses={201: s.PolicyImportResultSerializer,
                              200: OpenApiResponse(s.PolicyImportResultSerializer, description="Unchanged"),
                              409: OpenApiResponse(description="A category the rules name is not in the taxonomy "
                                                               "(`unknown_category`)")})
    @action(detail=False, methods=["post"], url_path="import",
            parser_classes=[YamlParser, XYamlParser, TextYamlParser, JSONParser])
    @body_required
    def import_yaml(self, request: Request) -> Response:
        """(admin) A YAML policy document becomes the policy's next, active version (unless unchanged)."""
        note = request.query_params.get("note")
        if isinstance(request.data, str):
            text = request.data
        else:
            data = _valid(s.PolicyImportSerializer, request.data)
            text, note = data["yaml"], data.get("note", note)
        v, created = actions.import_policy(text, user=request.user, name=request.query_params.get("name") or None,
                                           note=note)
        body = {"created": created, "version": s.PolicyVersionSerializer(v).data}
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class CategoryViewSet(mixins.ListModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet):
    """The taxonomy (everyone reads; admins add categories)."""

    serializer_class = s.CategorySerializer
    pagination_class = None
    filterset_fields = ["severity", "builtin"]
    ordering_fields = ["code", "name", "severity"]
    ordering = ["code"]
    queryset = Category.objects.all()

    def get_permissions(self) -> list[Any]:
        return [IsAdmin()] if self.action == "create" else [IsAuthenticated()]

    def perform_create(self, serializer: s.CategorySerializer) -> None:
        serializer.instance = actions.create_category(user=self.request.user, **serializer.validated_data)


