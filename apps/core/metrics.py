"""``/metrics``: the Prometheus exposition of every process of this host/pod plus the state that
apps register to be gathered at scrape time (``register_collector``; the pipeline's queues and
stages, apps/pipeline/collector.py).

Request latency is a histogram observed by :class:`MetricsMiddleware` in whichever gunicorn worker
answers; in multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, mediacommon/metrics.py) a scrape
merges every worker's samples — and, where the workers share the directory (``make run``), the
stage and engine metrics of the Celery pool children too. Counters and histograms are owned by
the process that observes the event; the scrape itself reads only bounded, cheap state through
the registered collectors — never a scan of a history table.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

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


#: Collectors of state gathered at scrape time, registered by the apps that own the state (from
#: their ``AppConfig.ready``, e.g. ``apps.pipeline.collector``): core knows none of them by name.
#: Each must be cheap (bounded queries, no scans) and yield gauges of the state now.
SCRAPE_COLLECTORS: list[object] = []


def register_collector(collector: object) -> None:
    """Adds a scrape-time collector (an object with ``collect()``) once per class, whatever the
    number of ``ready()`` calls."""
    if not any(type(c) is type(collector) for c in SCRAPE_COLLECTORS):
        SCRAPE_COLLECTORS.append(collector)


def metrics_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse(exposition(*SCRAPE_COLLECTORS), content_type=CONTENT_TYPE_LATEST)
