from django.apps import AppConfig


class SearchConfig(AppConfig):
    """Vector, full-text and hybrid search over insights."""

    name = "apps.search"
    label = "search"

    def ready(self) -> None:
        from apps.search import checks  # noqa: F401  (registers the system checks)
