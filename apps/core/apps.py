from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Shared base models, roles, API error format, health and metrics."""

    name = "apps.core"
    label = "core"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from apps.core.roles import ensure_groups

        post_migrate.connect(ensure_groups, sender=self)
