"""The pipeline's scrape-time Prometheus collector: queue depths and oldest-message ages from the
broker, stuck work and consumers from the in-flight stages and the worker presence table. The
pipeline app registers it with ``apps.core.metrics.register_collector`` (``PipelineConfig.ready``).

The scrape reads only bounded, cheap state: per queue one pipelined Redis LLEN/LINDEX (depth,
oldest message age), one grouped query over the *in-flight* stages (apps/pipeline/health.py) and
the worker presence rows — never a scan of the stage history.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily

from apps.pipeline.health import queue_health
from apps.pipeline.metrics import oldest_message_ages


class PipelineCollector:
    """Queue depths and oldest-message ages from the broker; stuck work and consumers from the
    in-flight stages and the worker presence table (gauges: state now, the same whichever web
    process answers)."""

    def describe(self) -> list[GaugeMetricFamily]:
        return []  # collected lazily at scrape time (never at registration)

    def collect(self) -> Iterator[GaugeMetricFamily]:
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
