"""Webhook subscriptions and the delivery log (admins)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.errors import ApiError
from apps.core.roles import IsAdmin
from apps.core.schema import generating_schema
from apps.moderation import actions
from apps.moderation import serializers as s
from apps.moderation.models import (
    WebhookDelivery,
    WebhookSubscription,
)


class WebhookSubscriptionViewSet(viewsets.ModelViewSet):
    """Webhook subscriptions (admins). The secret is shown once, in the response to create."""

    permission_classes = [IsAdmin]
    serializer_class = s.WebhookSubscriptionSerializer
    filterset_fields = ["enabled"]
    ordering_fields = ["id", "created_at", "url"]
    ordering = ["id"]
    queryset = WebhookSubscription.objects.none()

    def get_queryset(self) -> QuerySet[WebhookSubscription]:
        if generating_schema(self):
            return WebhookSubscription.objects.none()
        return WebhookSubscription.objects.order_by("id")

    @extend_schema(responses={201: s.WebhookSubscriptionCreatedSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        ser = self.get_serializer(data=request.data)
        ser.is_valid(raise_exception=True)
        sub = _target_checked(lambda: actions.create_webhook(request.user, **ser.validated_data))
        return Response(s.WebhookSubscriptionCreatedSerializer(sub).data, status=status.HTTP_201_CREATED)

    def perform_update(self, serializer: s.WebhookSubscriptionSerializer) -> None:
        sub = serializer.instance
        serializer.instance = _target_checked(
            lambda: actions.update_webhook(sub, self.request.user, **serializer.validated_data))

    def perform_destroy(self, instance: WebhookSubscription) -> None:
        actions.delete_webhook(instance, self.request.user)


def _target_checked(action: Any) -> Any:
    """Run a subscription action; a URL refused by the action's own check is a 400 on ``url``."""
    from apps.moderation import outbound

    try:
        return action()
    except outbound.TargetError as e:
        raise ApiError("The request is invalid.", code="invalid", detail={"url": [str(e)]}) from None


class WebhookDeliveryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The delivery log (admins), newest first; redeliver one by hand."""

    permission_classes = [IsAdmin]
    serializer_class = s.WebhookDeliverySerializer
    filterset_fields = ["subscription", "status", "event", "event_id", "last_error_kind"]
    ordering_fields = ["created_at", "next_attempt_at", "last_attempt_at", "delivered_at", "status"]
    ordering = ["-created_at"]
    queryset = WebhookDelivery.objects.none()

    def get_queryset(self) -> QuerySet[WebhookDelivery]:
        if generating_schema(self):
            return WebhookDelivery.objects.none()
        return WebhookDelivery.objects.select_related("subscription").order_by("-created_at", "-id")

    @extend_schema(request=None, responses={202: s.WebhookDeliverySerializer})
    @action(detail=True, methods=["post"])
    def redeliver(self, request: Request, pk: str | None = None) -> Response:
        """Send it again now, with a fresh attempt budget."""
        d = actions.redeliver_webhook(self.get_object(), request.user)
        return Response(self.get_serializer(d).data, status=status.HTTP_202_ACCEPTED)


