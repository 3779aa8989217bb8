from django.apps import AppConfig


class PipelineConfig(AppConfig):
    """Jobs, stage runs, dead letters; planning, dispatch, backpressure, reprocessing."""

    name = "apps.pipeline"
    label = "pipeline"
