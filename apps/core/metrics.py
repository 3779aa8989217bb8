"""Prometheus metrics for ``/metrics``.

Request latency is observed in-process by :class:`MetricsMiddleware`. Queue depths and task
counts/durations are *collected at scrape time* from the broker and from StageRun rows, so
they are the same whichever web process answers and need no shared metrics directory.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

REGISTRY = CollectorRegistry(auto_describe=True)
REQUEST_LATENCY = Histogram(
    "mediaintel_http_request_duration_seconds", "HTTP request latency",
    ["method", "route", "status"], registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


class MetricsMiddleware:
    """Observes request latency labelled by resolved route (not raw path: bounded cardinality)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        t0 = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        route = match.route if match and match.route else "unmatched"
        REQUEST_LATENCY.labels(request.method, route, str(response.status_code)).observe(time.perf_counter() - t0)
        return response


class PipelineCollector(Collector):
    """Queue depths from the broker and stage counts/durations from the database."""

    def describe(self) -> list[GaugeMetricFamily]:
        return []  # collected lazily at scrape time (never at import)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from apps.pipeline.metrics import queue_depths, stage_stats

        depth = GaugeMetricFamily("mediaintel_queue_depth", "Messages waiting per queue", labels=["queue"])
        for queue, n in queue_depths().items():
            depth.add_metric([queue], n)
        yield depth
        count = GaugeMetricFamily("mediaintel_stage_runs", "Stage runs by stage and status",
                                  labels=["stage", "status"])
        dur = GaugeMetricFamily("mediaintel_stage_run_seconds_mean",
                                "Mean run time of finished stages (last hour)", labels=["stage"])
        wait = GaugeMetricFamily("mediaintel_stage_wait_seconds_mean",
                                 "Mean queue wait of started stages (last hour)", labels=["stage"])
        for row in stage_stats():
            count.add_metric([row["stage"], row["status"]], row["n"])
            if row["status"] == "done" and row["run_s"] is not None:
                dur.add_metric([row["stage"]], row["run_s"])
                wait.add_metric([row["stage"]], row["wait_s"] or 0.0)
        yield count
        yield dur
        yield wait
        yield from _queue_health()


def _queue_health() -> Iterator[GaugeMetricFamily]:
    """Stuck work made visible: oldest waiting/running stage age, stalled stages, live consumers."""
    from apps.pipeline.health import queue_health

    oldest = GaugeMetricFamily("mediaintel_queue_oldest_stage_age_seconds",
                               "Age of the oldest queued stage (since dispatch) and running stage (since its last "
                               "heartbeat) per queue", labels=["queue", "status"])
    stalled = GaugeMetricFamily("mediaintel_stages_stalled",
                                "Stages waiting longer than expected (queued past the re-dispatch bound, lease "
                                "lapsed, retry overdue) per queue", labels=["queue"])
    consumers = GaugeMetricFamily("mediaintel_queue_consumers", "Live workers consuming each queue",
                                  labels=["queue"])
    for q, h in queue_health().items():
        oldest.add_metric([q, "queued"], h.oldest_queued_s or 0.0)
        oldest.add_metric([q, "running"], h.oldest_running_s or 0.0)
        stalled.add_metric([q], h.stalled)
        consumers.add_metric([q], len(h.consumers))
    yield oldest
    yield stalled
    yield consumers


REGISTRY.register(PipelineCollector())


def metrics_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
