"""Console page of webhook deliveries (admins): failed ones first, the error of our own making,
and a button to redeliver (the audited :func:`apps.moderation.actions.redeliver_webhook`)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.core.roles import ADMIN, has_role
from apps.moderation import actions
from apps.moderation.models import WebhookDelivery


def _admin(request: HttpRequest) -> None:
    if not has_role(request.user, ADMIN):
        raise PermissionDenied("Webhook deliveries are for admins.")


@login_required
def deliveries(request: HttpRequest) -> HttpResponse:
    """Deliveries of one status (``failed`` unless ``?status=`` says otherwise), newest first."""
    _admin(request)
    status = request.GET.get("status", WebhookDelivery.Status.FAILED)
    if status not in WebhookDelivery.Status.values:
        status = WebhookDelivery.Status.FAILED
    qs = WebhookDelivery.objects.select_related("subscription").filter(status=status).order_by("-created_at", "-id")
    counts = {s: WebhookDelivery.objects.filter(status=s).count() for s in WebhookDelivery.Status.values}
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    return render(request, "console/webhooks.html", {"page": page, "status": status, "counts": counts})


@require_POST
@login_required
def redeliver(request: HttpRequest, pk: int) -> HttpResponse:
    _admin(request)
    d = actions.redeliver_webhook(get_object_or_404(WebhookDelivery, pk=pk), request.user)
    messages.success(request, f"Delivery #{d.pk} ({d.event}) is queued again with a fresh attempt budget.")
    return redirect(reverse("console-webhooks"))
