"""OpenTelemetry tracing shared by the web and the workers.

One trace follows an asset from the upload request through dispatch, each stage and each engine
call: the web opens a span per request (apps/core/tracing.py); publishing a stage message injects
the current context into the Celery message headers (W3C ``traceparent``/``tracestate``,
:func:`inject`); the worker continues it (:func:`extract`) in a span per stage, with a child span
per engine call (workers/telemetry.py); the stage's successors are published inside that span,
so they join the same trace.

Exporting is off by default: without :func:`configure` (or with an empty endpoint) the API's
no-op tracer records nothing and costs next to nothing. ``configure`` is called once per process
(the web at start-up, each worker pool child after the fork: the batch exporter's thread does not
survive a fork). The SDK's own ``OTEL_*`` variables (``OTEL_BSP_SCHEDULE_DELAY``, ...) still apply.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace

log = logging.getLogger(__name__)

TRACER_NAME = "mediaintel"
#: The message headers :func:`inject` writes (W3C trace context).
HEADERS = ("traceparent", "tracestate")

_configured = False


def tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER_NAME)


def configure(service: str, endpoint: str, *, sample_ratio: float = 1.0) -> bool:
    """Install a tracer provider exporting OTLP/HTTP to ``endpoint`` (e.g.
    ``http://otel-collector:4318/v1/traces``); nothing when ``endpoint`` is empty. True when
    installed. Idempotent per process."""
    global _configured
    if not endpoint or _configured:
        return _configured
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    provider = TracerProvider(resource=Resource.create({"service.name": service}),
                              sampler=ParentBased(TraceIdRatioBased(sample_ratio)))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    trace.set_tracer_provider(provider)
    _configured = True
    log.info("tracing: %s exports OTLP to %s (sample ratio %s)", service, endpoint, sample_ratio)
    return True


def shutdown() -> None:
    """Flush and stop this process's exporter (a pool child before it exits)."""
    provider = trace.get_tracer_provider()
    if hasattr(provider, "shutdown"):
        provider.shutdown()


def inject() -> dict[str, str]:
    """The current trace context as message headers ({} when no span is recording)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return {k: v for k, v in carrier.items() if k in HEADERS}


def extract(headers: Mapping[str, Any] | None) -> otel_context.Context:
    """The context carried by a message's headers (an empty context when there is none)."""
    carrier = {k: str(v) for k, v in (headers or {}).items() if k in HEADERS and v}
    return propagate.extract(carrier)


def current_ids() -> tuple[str, str]:
    """(trace id, span id) of the current span as hex, or ("", "") when none is recording."""
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return "", ""
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")
