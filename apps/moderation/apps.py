from django.apps import AppConfig


class ModerationConfig(AppConfig):
    """Taxonomy, policies, signals, review, decisions, hash banks (see docs/architecture.md)."""

    name = "apps.moderation"
    label = "moderation"

    def ready(self) -> None:
        from apps.events.services import subscribe
        from apps.moderation.services import webhook_consumer

        subscribe(webhook_consumer)  # webhooks are one consumer of the domain events
