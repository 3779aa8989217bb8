"""Console routes of the moderation app (mounted under ``/console/`` by ``mediaintel.urls``): the
review queue and its items, an asset's printable report, the policy page and webhook deliveries."""

from django.urls import path

from apps.moderation import console, policy_console, report, webhook_console

urlpatterns = [
    path("assets/<uuid:pk>/report/", report.report_page, name="console-asset-report"),
    path("review/", console.queue, name="review-queue"),
    path("review/bulk/", console.bulk, name="review-bulk"),
    path("review/items/<uuid:pk>/", console.item_page, name="review-item"),
    path("review/items/<uuid:pk>/claim/", console.claim, name="review-claim"),
    path("review/items/<uuid:pk>/decide/", console.decide, name="review-decide"),
    path("review/items/<uuid:pk>/release/", console.release, name="review-release"),
    path("review/items/<uuid:pk>/renew/", console.renew, name="review-renew"),
    path("policy/", policy_console.policy_page, name="console-policy"),
    path("webhooks/", webhook_console.deliveries, name="console-webhooks"),
    path("webhooks/<int:pk>/redeliver/", webhook_console.redeliver, name="console-webhook-redeliver"),
]
