"""Jobs and dead letters (admin actions: replay, discard)."""

from __future__ import annotations

import django_filters.rest_framework as df
from django.db.models import Q, QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.audit.services import Actor
from apps.core.errors import ApiError, ErrorSerializer
from apps.core.filters import BoolFilter, TimestampFilter
from apps.core.roles import MODERATOR, IsAdmin, has_role
from apps.core.schema import generating_schema
from apps.pipeline.actions import discard_dead_letter, replay_dead_letter
from apps.pipeline.models import DeadLetter, Job
from apps.pipeline.serializers import DeadLetterReplayedSerializer, DeadLetterSerializer, JobSerializer


class JobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Pipeline jobs with their stages (uploaders see jobs of their own assets)."""

    serializer_class = JobSerializer
    filterset_fields = ["status", "asset", "reason"]
    ordering_fields = ["created_at", "started_at", "finished_at", "status"]
    ordering = ["-created_at"]

    queryset = Job.objects.none()

    def get_queryset(self) -> QuerySet[Job]:
        if generating_schema(self):
            return Job.objects.none()
        qs = Job.objects.select_related("asset").prefetch_related("stages")
        if not has_role(self.request.user, MODERATOR):
            qs = qs.filter(asset__uploader=self.request.user)
        return qs


class DeadLetterFilter(df.FilterSet):
    open = BoolFilter(method="filter_open", help_text="Neither replayed nor discarded (or, false: the others)")
    stage = df.CharFilter(field_name="stage_run__stage", help_text="The stage's name, e.g. `transcribe`")
    asset = df.UUIDFilter(field_name="stage_run__asset")
    failed_after = TimestampFilter(field_name="failed_at", lookup_expr="gte")
    failed_before = TimestampFilter(field_name="failed_at", lookup_expr="lt")

    class Meta:
        model = DeadLetter
        fields = ["discarded", "task_name", "error_class"]

    def filter_open(self, qs: QuerySet[DeadLetter], name: str, value: bool | None) -> QuerySet[DeadLetter]:
        if value is None:
            return qs
        is_open = Q(replayed_at__isnull=True, discarded=False)
        return qs.filter(is_open) if value else qs.exclude(is_open)


class DeadLetterViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Stages that failed for good; replay or discard them (admins)."""

    serializer_class = DeadLetterSerializer
    permission_classes = [IsAdmin]
    filterset_class = DeadLetterFilter
    ordering_fields = ["failed_at", "replayed_at", "task_name"]
    ordering = ["-failed_at"]

    queryset = DeadLetter.objects.none()

    def get_queryset(self) -> QuerySet[DeadLetter]:
        if generating_schema(self):
            return DeadLetter.objects.none()
        return DeadLetter.objects.select_related("stage_run")

    @extend_schema(request=None, responses={
        200: DeadLetterReplayedSerializer,
        409: OpenApiResponse(ErrorSerializer, description="Not replayable: the stage is no longer dead "
                                                          "(`code`: `not_dead`; `detail.dead_letter`: the row)")})
    @action(detail=True, methods=["post"])
    def replay(self, request: Request, pk: str | None = None) -> Response:
        """Send the dead stage again (attempts reset; its job reopens). Audited (``dlq.replayed``)."""
        dl = self.get_object()
        sent = replay_dead_letter(dl.pk, actor=Actor.user(request.user))
        dl.refresh_from_db()
        if not sent:
            raise ApiError(f"Dead letter {dl.pk} cannot be replayed: its stage is no longer dead.", code="not_dead",
                           status_code=409, detail={"dead_letter": DeadLetterSerializer(dl).data})
        return Response({**DeadLetterSerializer(dl).data, "replayed": True})

    @extend_schema(request=None, responses=DeadLetterSerializer)
    @action(detail=True, methods=["post"])
    def discard(self, request: Request, pk: str | None = None) -> Response:
        """Mark the dead letter discarded (the stage stays dead); idempotent. Audited (``dlq.discarded``)."""
        dl = self.get_object()
        discard_dead_letter(dl.pk, actor=Actor.user(request.user))
        dl.refresh_from_db()
        return Response(DeadLetterSerializer(dl).data)
