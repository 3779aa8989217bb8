"""Search API routes, included under /api/v1/ by mediaintel/api.py (trailing slash optional, like the router's)."""

from django.urls import re_path

from apps.search.views import SearchView, SimilarView

urlpatterns = [
    re_path(r"^search/?$", SearchView.as_view(), name="search"),
    re_path(r"^search/similar/?$", SimilarView.as_view(), name="search-similar"),
]
