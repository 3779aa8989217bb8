"""``/metrics``: the Prometheus exposition of every process of this host/pod plus the pipeline's
state gathered at scrape time.

Request latency is a histogram observed by :class:`MetricsMiddleware` in whichever gunicorn worker
answers; in multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, mediacommon/metrics.py) a scrape
merges every worker's samples — and, where the workers share the directory (``make run``), the
stage and engine metrics of the Celery pool children too. Counters and histograms are owned by
the process that observes the event; the scrape itself reads only bounded, cheap state: per
queue one pipelined Redis LLEN/LINDEX (depth, oldest message age), one grouped query over the
*in-flight* stages (apps/pipeline/health.py) and the worker presence rows — never a scan of the
stage history.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from django.http import HttpRequest, HttpResponse
from prometheus_client.core import GaugeMetricFamily

from mediacommon.metrics import CONTENT_TYPE_LATEST, HTTP_REQUEST_SECONDS, exposition


class MetricsMiddleware:
    """Observes request latency labelled by resolved route (not raw path: bounded cardinality)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        t0 = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        route = match.route if match and match.route else "unmatched"
        HTTP_REQUEST_SECONDS.labels(request.method, route, str(response.status_code)).observe(
            time.perf_counter() - t0)
        return response


class PipelineCollector:
    """Queue depths and oldest-message ages from the broker; stuck work and consumers from the
    in-flight stages and the worker presence table (gauges: state now, the same whichever web
    process answers)."""

    def describe(self) -> list[GaugeMetricFamily]:
        return []  # collected lazily at scrape time (never at registration)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from apps.pipeline.health import queue_health
        from apps.pipeline.metrics import oldest_message_ages

        health = queue_health()
        depth = GaugeMetricFamily("mediaintel_queue_depth", "Messages waiting per queue (-1: broker unreachable)",
                                  labels=["queue"])
        age = GaugeMetricFamily("mediaintel_queue_oldest_message_age_seconds",
                                "Age of the oldest message waiting in each queue, from its publish time (0 when "
                                "empty)", labels=["queue"])
        ages = oldest_message_ages()
        oldest = GaugeMetricFamily("mediaintel_queue_oldest_stage_age_seconds",
                                   "Age of the oldest queued stage (since dispatch) and running stage (since its "
                                   "last heartbeat) per queue", labels=["queue", "status"])
        stalled = GaugeMetricFamily("mediaintel_stages_stalled",
                                    "Stages waiting longer than expected (queued past the re-dispatch bound, lease "
                                    "lapsed, retry overdue) per queue", labels=["queue"])
        consumers = GaugeMetricFamily("mediaintel_queue_consumers", "Live workers consuming each queue",
                                      labels=["queue"])
        for q, h in sorted(health.items()):
            depth.add_metric([q], h.depth)
            age.add_metric([q], ages.get(q, 0.0))
            oldest.add_metric([q, "queued"], h.oldest_queued_s or 0.0)
            oldest.add_metric([q, "running"], h.oldest_running_s or 0.0)
            stalled.add_metric([q], h.stalled)
            consumers.add_metric([q], len(h.consumers))
        yield from (depth, age, oldest, stalled, consumers)


def metrics_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse(exposition(PipelineCollector()), content_type=CONTENT_TYPE_LATEST)
