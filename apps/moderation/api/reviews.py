"""The review queue API (moderators): list, claim, release, decide, escalate."""

from __future__ import annotations

from typing import Any

import django_filters as df
from django.db import connection
from django.db.models import Count, Q, QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.filters import BoolFilter
from apps.core.pagination import LimitOffsetPagination
from apps.core.roles import IsModerator
from apps.core.schema import generating_schema
from apps.moderation import actions
from apps.moderation import serializers as s
from apps.moderation.api._common import (
    ServiceErrors,
    _valid,
)
from apps.moderation.models import (
    ReviewItem,
    ReviewState,
)
from apps.moderation.services import PENDING


class ReviewItemFilter(df.FilterSet):
    state = df.MultipleChoiceFilter(choices=ReviewState.choices,
                                    help_text="Repeatable; default: the pending states (open, claimed, escalated)")
    category = df.CharFilter(method="filter_category", help_text="A taxonomy code the item is flagged for")
    mine = BoolFilter(method="filter_mine", help_text="Only items I have claimed")

    class Meta:
        model = ReviewItem
        fields = ["state", "category", "asset", "mine"]

    def filter_category(self, qs: QuerySet[ReviewItem], name: str, value: str) -> QuerySet[ReviewItem]:
        return qs.filter(categories__contains=[value]) if value else qs

    def filter_mine(self, qs: QuerySet[ReviewItem], name: str, value: bool | None) -> QuerySet[ReviewItem]:
        if value is None:
            return qs
        mine = Q(state=ReviewState.CLAIMED, claimed_by=self.request.user)
        return qs.filter(mine) if value else qs.exclude(mine)


class CountsPagination(LimitOffsetPagination):
    """Limit/offset pages plus ``counts`` (items per state, pending items per category)."""

    counts: dict[str, Any] | None = None

    def get_paginated_response(self, data: Any) -> Response:
        resp = super().get_paginated_response(data)
        resp.data["counts"] = self.counts or {"by_state": {}, "by_category": {}}
        return resp

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        out = super().get_paginated_response_schema(schema)
        counts = {"type": "object", "additionalProperties": {"type": "integer"}}
        out["properties"]["counts"] = {"type": "object",
                                       "properties": {"by_state": counts, "by_category": counts}}
        return out


class ReviewItemViewSet(ServiceErrors, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The human review queue (moderators): most severe first; claim, release, decide."""

    permission_classes = [IsModerator]
    serializer_class = s.ReviewItemSerializer
    filterset_class = ReviewItemFilter
    ordering_fields = ["severity", "created_at", "updated_at", "claim_expires_at", "decided_at", "state"]
    ordering = ["-severity", "created_at"]
    pagination_class = CountsPagination
    queryset = ReviewItem.objects.none()

    def get_queryset(self) -> QuerySet[ReviewItem]:
        if generating_schema(self):
            return ReviewItem.objects.none()
        return ReviewItem.objects.select_related("asset", "claimed_by", "policy_version__policy")

    def get_serializer_class(self) -> type:
        return s.ReviewItemDetailSerializer if self.action != "list" else s.ReviewItemSerializer

    def _counts(self) -> dict[str, Any]:
        base = ReviewItem.objects.all()
        if category := self.request.query_params.get("category"):  # NUL: no code holds one (the filter's rule)
            base = base.none() if "\x00" in category else base.filter(categories__contains=[category])
        by_state = {st: 0 for st in ReviewState.values}
        by_state.update({r["state"]: r["n"] for r in base.values("state").annotate(n=Count("id"))})
        with connection.cursor() as cur:
            cur.execute("SELECT c, count(*) FROM moderation_reviewitem, jsonb_array_elements_text(categories) c "
                        "WHERE state = ANY(%s) GROUP BY c ORDER BY c", [list(PENDING)])
            by_category = {c: n for c, n in cur.fetchall()}
        return {"by_state": by_state, "by_category": by_category}

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Review items (default: pending), with counts per state and pending counts per category."""
        qs = self.filter_queryset(self.get_queryset())
        if not request.query_params.getlist("state"):
            qs = qs.filter(state__in=PENDING)
        page = self.paginate_queryset(qs)
        self.paginator.counts = self._counts()
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(request=None, responses={200: s.ReviewItemDetailSerializer,
                                            409: OpenApiResponse(description="Claimed by another moderator")})
    @action(detail=True, methods=["post"])
    def claim(self, request: Request, pk: str | None = None) -> Response:
        """Claim the item for yourself (for ``MEDIAINTEL_REVIEW_CLAIM_TTL`` seconds); exactly one moderator wins."""
        self.get_object()
        item = actions.claim_review(pk, request.user)
        return Response(s.ReviewItemDetailSerializer(self.get_queryset().get(pk=item.pk)).data)

    @extend_schema(request=None, responses={200: s.ReviewItemSerializer,
                                            409: OpenApiResponse(description="You do not hold the item")})
    @action(detail=True, methods=["post"])
    def release(self, request: Request, pk: str | None = None) -> Response:
        """Give a claimed item back to the queue."""
        item = self.get_object()
        actions.release_review(item.pk, request.user)
        return Response(s.ReviewItemSerializer(self.get_queryset().get(pk=item.pk)).data)

    @extend_schema(request=s.DecideSerializer, responses={201: s.DecisionSerializer,
                                                          409: OpenApiResponse(description="Not claimed by you")})
    @action(detail=True, methods=["post"])
    def decide(self, request: Request, pk: str | None = None) -> Response:
        """Approve, reject (with reason codes) or escalate the item you hold; writes the decision."""
        item = self.get_object()
        data = _valid(s.DecideSerializer, request.data)
        d = actions.decide_review(item.pk, request.user, data["outcome"], reason_codes=data["reason_codes"],
                                  note=data["note"])
        return Response(s.DecisionSerializer(d, context={"moderator_view": True}).data,
                        status=status.HTTP_201_CREATED)


