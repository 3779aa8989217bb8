"""Moderator console routes (mounted under ``/console/review/`` by ``apps.moderation.console_urls``)."""

from django.urls import path

from apps.moderation import console

urlpatterns = [
    path("", console.queue, name="review-queue"),
    path("bulk/", console.bulk, name="review-bulk"),
    path("items/<uuid:pk>/", console.item_page, name="review-item"),
    path("items/<uuid:pk>/claim/", console.claim, name="review-claim"),
    path("items/<uuid:pk>/decide/", console.decide, name="review-decide"),
    path("items/<uuid:pk>/release/", console.release, name="review-release"),
    path("items/<uuid:pk>/renew/", console.renew, name="review-renew"),
]
