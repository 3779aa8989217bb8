"""One trace from the upload request to the asset being ready, across real processes.

The web side runs in this process (the test client) with the SDK's in-memory exporter; a real
worker process exports its spans over OTLP/HTTP (``MEDIAINTEL_OTLP_ENDPOINT``) to a receiver this
test runs on 127.0.0.1. The stage spans continue the trace carried in the Celery message headers,
each engine call is a child of its stage's span, and the worker's log lines carry the trace id.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.urls import reverse
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from rest_framework.test import APIClient

from apps.assets.models import MediaAsset
from tests.conftest import wait_for
from tests.pipeline.helpers import wait_status

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

TEXT_STAGES = ("text_extract", "language", "text_embed", "text_flags", "moderate")
_EXPORTER = InMemorySpanExporter()


class _WhileTesting(SimpleSpanProcessor):
    """Keeps spans only while a test holds the fixture: the global provider outlives the test (it
    can be set once per process) and later tests' requests must not pile up spans in memory."""

    active = False

    def on_end(self, span: Any) -> None:
        if self.active:
            super().on_end(span)


_PROCESSOR = _WhileTesting(_EXPORTER)


@pytest.fixture
def web_spans() -> Iterator[InMemorySpanExporter]:
    """This process's spans, in memory."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(_PROCESSOR)
        trace.set_tracer_provider(provider)
    _EXPORTER.clear()
    _WhileTesting.active = True
    yield _EXPORTER
    _WhileTesting.active = False
    _EXPORTER.clear()


class _Receiver(BaseHTTPRequestHandler):
    """An OTLP/HTTP trace receiver: decodes each protobuf export into plain dicts."""

    spans: list[dict[str, Any]] = []
    lock = threading.Lock()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        req = ExportTraceServiceRequest()
        req.ParseFromString(body)
        got = []
        for rs in req.resource_spans:
            service = next((a.value.string_value for a in rs.resource.attributes if a.key == "service.name"), "")
            for ss in rs.scope_spans:
                for s in ss.spans:
                    got.append({"name": s.name, "trace_id": s.trace_id.hex(), "span_id": s.span_id.hex(),
                                "parent_id": s.parent_span_id.hex(), "service": service,
                                "attributes": {a.key: _value(a.value) for a in s.attributes},
                                "events": [e.name for e in s.events]})
        with self.lock:
            self.spans.extend(got)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def _value(v: Any) -> Any:
    return getattr(v, v.WhichOneof("value")) if v.WhichOneof("value") else None


@pytest.fixture
def otlp_receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    _Receiver.spans = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1/traces", _Receiver.spans
    server.shutdown()


def _uploader() -> APIClient:
    user = get_user_model().objects.create_user("tracer", password="x" * 12)
    user.groups.add(Group.objects.get(name="uploader"))
    c = APIClient()
    c.force_authenticate(user)
    return c


def test_one_trace_follows_an_upload_through_every_stage_and_engine_to_ready(
        start_worker, isolated_storage, web_spans, otlp_receiver):
    endpoint, received = otlp_receiver
    w = start_worker(env={"MEDIAINTEL_OTLP_ENDPOINT": endpoint, "OTEL_BSP_SCHEDULE_DELAY": "200",
                          "MEDIAINTEL_LOG_FORMAT": "text", "MEDIAINTEL_FAULT_INJECTION": "0"})
    f = io.BytesIO(b"The harbour festival opens on Saturday. You are a stupid idiot.\n")
    f.name = "note.txt"
    r = _uploader().post(reverse("asset-list"), {"file": f}, format="multipart")
    assert r.status_code == 201, r.content
    asset = MediaAsset.objects.get(pk=r.json()["id"])
    wait_status(asset, {"ready", "failed"}, timeout=180)
    assert asset.status == "ready"

    # the web side: the request span, and the first stage's dispatch inside it
    (request,) = [s for s in web_spans.get_finished_spans() if s.kind == trace.SpanKind.SERVER]
    assert request.name.startswith("POST api/v1/assets/") and request.attributes["http.response.status_code"] == 201
    trace_id = format(request.context.trace_id, "032x")
    dispatches = [s for s in web_spans.get_finished_spans() if s.name.startswith("dispatch ")]
    assert dispatches and all(s.parent and s.parent.span_id == request.context.span_id for s in dispatches)
    assert r["traceparent"].split("-")[1] == trace_id

    # the worker side: every stage span of this asset, exported over OTLP, in the same trace
    def stage_spans() -> dict[str, dict[str, Any]]:
        return {s["attributes"]["mediaintel.stage"]: s for s in list(received)
                if s["name"].startswith("stage ") and s["attributes"].get("mediaintel.asset") == str(asset.pk)}

    wait_for(lambda: set(stage_spans()) == set(TEXT_STAGES) and any("asset.ready" in s["events"] for s in received),
             timeout=30, what="every stage span and the asset.ready event exported")
    stages = stage_spans()
    assert {s["trace_id"] for s in stages.values()} == {trace_id}
    assert all(s["service"] == "mediaintel-worker" and s["attributes"]["mediaintel.outcome"] == "done"
               for s in stages.values())
    spans_by_id = {s["span_id"]: s for s in received}
    web_ids = {format(s.context.span_id, "016x"): s for s in web_spans.get_finished_spans()}
    # each stage's parent is the dispatch span that published it (web or a previous stage's worker)
    for name, s in stages.items():
        parent = spans_by_id.get(s["parent_id"]) or web_ids.get(s["parent_id"])
        assert parent is not None, f"stage {name}: parent {s['parent_id']} not exported"
        parent_name = parent["name"] if isinstance(parent, dict) else parent.name
        assert parent_name == f"dispatch {name}", (name, parent_name)
    # the engine calls are children of their stage's span
    engines = {s["attributes"]["mediaintel.engine"]: s for s in received if s["name"].startswith("engine ")
               and s["trace_id"] == trace_id}
    assert {"language", "text_embed", "text_moderation"} <= set(engines)
    assert engines["text_embed"]["parent_id"] == stages["text_embed"]["span_id"]
    assert engines["text_moderation"]["parent_id"] == stages["text_flags"]["span_id"]
    # ready is recorded in the trace, by the stage that finished the asset
    (ready,) = [s for s in received if "asset.ready" in s["events"] and s["trace_id"] == trace_id]
    assert ready["name"] == "stage moderate"
    # the worker's log lines carry the trace id
    assert f"trace={trace_id}" in w.log.read_text(errors="replace")


def test_tracing_is_off_by_default(settings):
    """Without an endpoint nothing is installed and the API's no-op tracer records nothing."""
    from mediacommon.tracing import configure

    assert settings.MEDIAINTEL_OTLP_ENDPOINT == ""
    assert configure("mediaintel-test", settings.MEDIAINTEL_OTLP_ENDPOINT) is False

