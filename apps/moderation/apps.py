from django.apps import AppConfig


class ModerationConfig(AppConfig):
    """Taxonomy, policies, signals, review, decisions, hash banks (see docs/architecture.md)."""

    name = "apps.moderation"
    label = "moderation"

    def ready(self) -> None:
        from apps.events.services import subscribe
        from apps.moderation.services import moderate_stage_spec, webhook_consumer
        from apps.pipeline.versions import register_version_provider

        subscribe(webhook_consumer)  # webhooks are one consumer of the domain events
        register_version_provider("moderate", moderate_stage_spec)  # the active policy version
