from django.apps import AppConfig


class AssetsConfig(AppConfig):
    """Media assets, content-addressed blobs, validation and ingestion."""

    name = "apps.assets"
    label = "assets"
