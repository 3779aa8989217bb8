"""Console routes of the asset library (mounted under ``/console/`` by ``mediaintel.urls``)."""

from django.urls import path

from apps.assets import console

urlpatterns = [
    path("", console.library, name="console-library"),
    path("assets/<uuid:pk>/", console.asset_detail, name="console-asset"),
]
