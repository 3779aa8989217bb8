from django.apps import AppConfig


class InsightsConfig(AppConfig):
    """What analysis produced, keyed by (asset, stage, engine version)."""

    name = "apps.insights"
    label = "insights"
