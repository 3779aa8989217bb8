"""A server span per HTTP request (OpenTelemetry), continuing an incoming ``traceparent``.

Named ``<METHOD> <route template>`` (bounded, like the metrics' route label) once the URL is
resolved. Everything the request does — the upload's ingest, the stage messages published when
its transaction commits — runs inside it, so the pipeline's spans join the request's trace
(mediacommon/tracing.py). With tracing off the tracer is the API's no-op and this costs a few
microseconds.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from mediacommon.tracing import extract, tracer


class TracingMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        parent = extract({k.lower(): v for k, v in request.headers.items()})
        with tracer().start_as_current_span(f"{request.method} unmatched", context=parent, kind=SpanKind.SERVER,
                                            attributes={"http.request.method": request.method or ""}) as span:
            response = self.get_response(request)
            match = getattr(request, "resolver_match", None)
            route = match.route if match and match.route else "unmatched"
            span.update_name(f"{request.method} {route}")
            span.set_attribute("http.route", route)
            span.set_attribute("http.response.status_code", response.status_code)
            if response.status_code >= 500:
                span.set_status(Status(StatusCode.ERROR))
            rid = getattr(request, "request_id", "")
            if rid:
                span.set_attribute("mediaintel.request_id", rid)
            if span.is_recording():
                response["traceparent"] = _traceparent(span)
            return response


def _traceparent(span: trace.Span) -> str:
    ctx = span.get_span_context()
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"
