"""URL map: API under /api/v1/, schema and docs, console, admin, probes (livez, readyz, healthz) and metrics.

Each app owns its console pages and mounts them here from its ``console_urls`` module (all under
``/console/``); ``apps.core`` provides the shell (base template, errors, health, metrics) and
imports no feature app.
"""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from apps.accounts.login import ThrottledLoginView
from apps.assets.views import signed_content
from apps.core.health import livez, readyz
from apps.core.metrics import metrics_view

urlpatterns = [
    path("livez", livez, name="livez"),
    path("readyz", readyz, name="readyz"),
    path("healthz", readyz, name="healthz"),  # the readiness check under its old name
    path("metrics", metrics_view, name="metrics"),
    path("api/v1/", include("mediaintel.api")),
    path("content/<str:token>", signed_content, name="asset-signed-content"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="api-redoc"),
    path("accounts/login/", ThrottledLoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("", RedirectView.as_view(pattern_name="console-library", permanent=False)),
    path("console/", include("apps.assets.console_urls")),
    path("console/", include("apps.pipeline.console_urls")),
    path("console/", include("apps.moderation.console_urls")),
    path("console/", include("apps.search.console_urls")),
]

handler404 = "apps.core.errors.not_found"
handler500 = "apps.core.errors.server_error"
