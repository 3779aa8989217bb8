from typing import Any

from django.apps import AppConfig


def _check_queues() -> dict[str, Any]:
    """Readiness (non-critical): no queue holds messages that no live worker consumes, nothing stalled."""
    from apps.pipeline.health import queue_health

    health = queue_health()
    unconsumed = sorted(q for q, h in health.items() if h.unconsumed)
    stalled = {q: h.stalled for q, h in health.items() if h.stalled}
    out: dict[str, Any] = {"ok": not unconsumed, "stalled": stalled}
    if unconsumed:
        out["error"] = f"queues hold messages with no live consumer: {', '.join(unconsumed)}"
        out["unconsumed"] = unconsumed
    return out


class PipelineConfig(AppConfig):
    """Jobs, stage runs, dead letters; planning, dispatch, backpressure, reprocessing."""

    name = "apps.pipeline"
    label = "pipeline"

    def ready(self) -> None:
        from apps.core.health import READINESS_CHECKS, Check
        from apps.core.metrics import register_collector
        from apps.pipeline.collector import PipelineCollector

        if not any(c.name == "queues" for c in READINESS_CHECKS):
            READINESS_CHECKS.append(Check("queues", _check_queues, critical=False))
        register_collector(PipelineCollector())
