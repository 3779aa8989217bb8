"""The web console (server-rendered; htmx for live parts)."""

from django.urls import path
from django.views.generic import RedirectView

from apps.core import console

urlpatterns = [
    path("", RedirectView.as_view(url="/console/", permanent=False)),
    path("console/", console.library, name="console-library"),
    path("console/assets/<uuid:pk>/", console.asset_detail, name="console-asset"),
    path("console/jobs/", console.jobs, name="console-jobs"),
    path("console/dead-letters/", console.dead_letters, name="console-dlq"),
]
