"""``manage.py pipeline status | reconcile [--dry-run]``.

``status``: per queue depth, consumers, stages held/running, the oldest waiting and running stage,
stalled stages, done/failed in the last hour with mean wait and run time.
``reconcile``: one reconciler pass now (the same one beat runs every few seconds), printed.
"""

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

from apps.pipeline.health import queue_health
from apps.pipeline.models import BROKEN, StageRun, StageStatus
from apps.pipeline.reconcile import reconcile
from mediacommon.routing import QUEUES


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:.0f}s" if seconds < 120 else f"{seconds / 60:.0f}m"


class Command(BaseCommand):
    help = "Pipeline status per queue, or one reconciler pass."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["status", "reconcile"])
        parser.add_argument("--dry-run", action="store_true", help="reconcile: say what would be done, do nothing")

    def handle(self, *args: Any, action: str, dry_run: bool, **_: Any) -> None:
        if action == "reconcile":
            self._reconcile(dry_run)
        else:
            self._status()

    def _reconcile(self, dry_run: bool) -> None:
        report = reconcile(dry_run=dry_run)
        if report.skipped:
            self.stdout.write(f"skipped: {report.skipped}")
            return
        if not report.judged_leases:
            self.stdout.write("leases not judged on this pass: the reconciler had not run for a whole lease "
                              "(run it again in a few seconds)")
        for a in report.actions:
            self.stdout.write(f"{'would ' if dry_run else ''}{a.action:<9} {a.stage:<12} run {a.run_id:<8} "
                              f"asset {a.asset_id}  ({a.status}: {a.why})")
        verb = "would act on" if dry_run else "acted on"
        self.stdout.write(f"{verb} {len(report.actions)} stage(s)" if report.actions else "nothing to reconcile")

    def _status(self) -> None:
        since = timezone.now() - timedelta(hours=1)
        run_s = ExpressionWrapper(Extract(F("finished_at") - F("started_at"), "epoch"), output_field=FloatField())
        wait_s = ExpressionWrapper(Extract(F("started_at") - F("queued_at"), "epoch"), output_field=FloatField())
        stats: dict[str, dict[str, Any]] = defaultdict(dict)
        for r in StageRun.objects.values("queue").annotate(
                running=Count("id", filter=Q(status=StageStatus.RUNNING)),
                pending=Count("id", filter=Q(status__in=[StageStatus.PENDING, StageStatus.RETRYING])),
                done=Count("id", filter=Q(status=StageStatus.DONE, finished_at__gte=since)),
                failed=Count("id", filter=Q(status__in=BROKEN,
                                            finished_at__gte=since)),
                wait=Avg(wait_s, filter=Q(finished_at__gte=since, status=StageStatus.DONE)),
                run=Avg(run_s, filter=Q(finished_at__gte=since, status=StageStatus.DONE))):
            stats[r["queue"]] = r
        health = queue_health()
        t = Table(title="pipeline status (last hour)")
        for col in ("queue", "depth", "consumers", "held", "running", "oldest queued", "oldest running",
                    "stalled", "done/h", "failed/h", "mean wait s", "mean run s"):
            t.add_column(col, justify="right" if col != "queue" else "left")
        for q in QUEUES:
            s, h = stats.get(q, {}), health[q]
            fmt = lambda v: f"{v:.2f}" if v is not None else "-"  # noqa: E731
            consumers = str(len(h.consumers)) if not h.unconsumed else "[bold red]0 (no consumer)[/]"
            stalled = f"[bold red]{h.stalled}[/]" if h.stalled else "0"
            t.add_row(q, str(h.depth) if h.depth >= 0 else "?", consumers, str(s.get("pending", 0)),
                      str(s.get("running", 0)), _age(h.oldest_queued_s), _age(h.oldest_running_s), stalled,
                      str(s.get("done", 0)), str(s.get("failed", 0)), fmt(s.get("wait")), fmt(s.get("run")))
        Console(file=self.stdout, width=160).print(t)
        stalled = sum(h.stalled for h in health.values())
        if stalled:
            self.stdout.write(f"{stalled} stage(s) stalled: the reconciler re-sends them within seconds; "
                              "`manage.py pipeline reconcile --dry-run` shows what it will do")
        for q in (h.queue for h in health.values() if h.unconsumed):
            self.stdout.write(f"queue {q} holds messages but no live worker consumes it: start a worker whose "
                              "role includes it (docs/operations.md)")
