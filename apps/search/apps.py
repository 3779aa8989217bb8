from django.apps import AppConfig


class SearchConfig(AppConfig):
    """Vector, full-text and hybrid search over insights."""

    name = "apps.search"
    label = "search"
