"""The web console (server-rendered; htmx for live parts)."""

from django.urls import include, path
from django.views.generic import RedirectView

from apps.core import console
from apps.moderation import policy_console, report, webhook_console
from apps.search import console as search_console

urlpatterns = [
    path("", RedirectView.as_view(url="/console/", permanent=False)),
    path("console/", console.library, name="console-library"),
    path("console/assets/<uuid:pk>/", console.asset_detail, name="console-asset"),
    path("console/assets/<uuid:pk>/report/", report.report_page, name="console-asset-report"),
    path("console/jobs/", console.jobs, name="console-jobs"),
    path("console/dead-letters/", console.dead_letters, name="console-dlq"),
    path("console/search/", search_console.search_page, name="console-search"),
    path("console/dead-letters/<int:pk>/<str:action>/", console.dead_letter_action, name="console-dlq-action"),
    path("console/review/", include("apps.moderation.urls")),
    path("console/evaluations/", include("apps.pipeline.console_urls")),
    path("console/policy/", policy_console.policy_page, name="console-policy"),
    path("console/webhooks/", webhook_console.deliveries, name="console-webhooks"),
    path("console/webhooks/<int:pk>/redeliver/", webhook_console.redeliver, name="console-webhook-redeliver"),
]
