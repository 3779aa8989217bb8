"""Jobs and dead letters (admin actions: replay, discard)."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.audit.services import Actor
from apps.core.errors import ApiError, ErrorSerializer
from apps.core.roles import MODERATOR, IsAdmin, has_role
from apps.core.schema import generating_schema
from apps.pipeline.actions import discard_dead_letter, replay_dead_letter
from apps.pipeline.models import DeadLetter, Job
from apps.pipeline.serializers import DeadLetterReplayedSerializer, DeadLetterSerializer, JobSerializer


class JobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Pipeline jobs with their stages (uploaders see jobs of their own assets)."""

    serializer_class = JobSerializer
    filterset_fields = ["status", "asset"]

    queryset = Job.objects.none()

    def get_queryset(self) -> QuerySet[Job]:
        if generating_schema(self):
            return Job.objects.none()
        qs = Job.objects.select_related("asset").prefetch_related("stages")
        if not has_role(self.request.user, MODERATOR):
            qs = qs.filter(asset__uploader=self.request.user)
        return qs


class DeadLetterViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Stages that failed for good; replay or discard them (admins)."""

    serializer_class = DeadLetterSerializer
    permission_classes = [IsAdmin]
    filterset_fields = ["discarded"]

    queryset = DeadLetter.objects.none()

    def get_queryset(self) -> QuerySet[DeadLetter]:
        qs = DeadLetter.objects.select_related("stage_run")
        if self.request.query_params.get("open") in ("1", "true"):
            qs = qs.filter(replayed_at__isnull=True, discarded=False)
        return qs

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
