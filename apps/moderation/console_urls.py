"""Console routes of the moderation app: the review queue (``apps.moderation.urls``), an asset's
printable report, the policy page and webhook deliveries (mounted under ``/console/`` by
``mediaintel.urls``)."""

from django.urls import include, path

from apps.moderation import policy_console, report, webhook_console

urlpatterns = [
    path("assets/<uuid:pk>/report/", report.report_page, name="console-asset-report"),
    path("review/", include("apps.moderation.urls")),
    path("policy/", policy_console.policy_page, name="console-policy"),
    path("webhooks/", webhook_console.deliveries, name="console-webhooks"),
    path("webhooks/<int:pk>/redeliver/", webhook_console.redeliver, name="console-webhook-redeliver"),
]
