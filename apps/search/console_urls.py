"""Console routes of the search app (mounted under ``/console/`` by ``mediaintel.urls``)."""

from django.urls import path

from apps.search import console

urlpatterns = [
    path("search/", console.search_page, name="console-search"),
]
