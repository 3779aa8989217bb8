from django.apps import AppConfig


class ModerationConfig(AppConfig):
    """Taxonomy, policies, signals, review, decisions, hash banks (see docs/architecture.md)."""

    name = "apps.moderation"
    label = "moderation"
