"""``manage.py pipeline status``: per queue depth, running, done/failed in the last hour, wait and run time."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db.models import Avg, Count, ExpressionWrapper, F, FloatField, Q
from django.db.models.functions import Extract
from django.utils import timezone
from rich.console import Console
from rich.table import Table

from apps.pipeline.metrics import queue_depths
from apps.pipeline.models import StageRun, StageStatus
from workers.routing import QUEUES


class Command(BaseCommand):
    help = "Pipeline status per queue."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["status"])

    def handle(self, *args: Any, **_: Any) -> None:
        since = timezone.now() - timedelta(hours=1)
        run_s = ExpressionWrapper(Extract(F("finished_at") - F("started_at"), "epoch"), output_field=FloatField())
        wait_s = ExpressionWrapper(Extract(F("started_at") - F("queued_at"), "epoch"), output_field=FloatField())
        stats: dict[str, dict[str, Any]] = defaultdict(dict)
        for r in StageRun.objects.values("queue").annotate(
                running=Count("id", filter=Q(status=StageStatus.RUNNING)),
                pending=Count("id", filter=Q(status__in=[StageStatus.PENDING, StageStatus.RETRYING])),
                done=Count("id", filter=Q(status=StageStatus.DONE, finished_at__gte=since)),
                failed=Count("id", filter=Q(status__in=[StageStatus.DEAD, StageStatus.FAILED],
                                            finished_at__gte=since)),
                wait=Avg(wait_s, filter=Q(finished_at__gte=since, status=StageStatus.DONE)),
                run=Avg(run_s, filter=Q(finished_at__gte=since, status=StageStatus.DONE))):
            stats[r["queue"]] = r
        depths = queue_depths()
        t = Table(title="pipeline status (last hour)")
        for col in ("queue", "depth", "held", "running", "done/h", "failed/h", "mean wait s", "mean run s"):
            t.add_column(col, justify="right" if col != "queue" else "left")
        for q in QUEUES:
            s = stats.get(q, {})
            fmt = lambda v: f"{v:.2f}" if v is not None else "-"  # noqa: E731
            t.add_row(q, str(depths.get(q, "?")), str(s.get("pending", 0)), str(s.get("running", 0)),
                      str(s.get("done", 0)), str(s.get("failed", 0)), fmt(s.get("wait")), fmt(s.get("run")))
        Console(file=self.stdout, width=120).print(t)
