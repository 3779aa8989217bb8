"""The reconciler: the owner of every stage that is not final.

A stage message can be lost (a worker acknowledged it while the database was out, a broker
lost it, a retry's re-send failed), and a worker can die holding a stage (SIGKILL, OOM kill,
segfault, hard time limit inside native code). The pipeline never waits on either: every
pass (beat, every few seconds; ``manage.py pipeline reconcile``) looks at the database — the
source of truth — and acts:

* ``running`` with a lapsed lease (no heartbeat for ``MEDIAINTEL_STAGE_LEASE`` s): its worker
  is gone. With attempts left it becomes ``retrying`` and is re-sent; on its last attempt it
  ends ``dead`` with a DeadLetter that says "worker lost" (never re-sent forever).
* ``retrying`` whose next attempt is overdue by a lease while its queue is empty: the delayed
  message is lost; re-send (and not again before ``MEDIAINTEL_STAGE_REDISPATCH_AFTER``).
* ``queued`` for longer than ``MEDIAINTEL_STAGE_REDISPATCH_AFTER`` s while its broker queue is
  empty: nothing can deliver it any more; re-send. (A non-empty queue is a backlog, not a loss:
  once it drains, what is still ``queued`` is re-sent.)
* a running job none of whose stages can make progress: closed (asset ``ready``/``failed``).

Re-sending is always safe: the claim is one conditional UPDATE, so a duplicate message of a
stage that is running or finished is a no-op.

Invariant: a lease is judged only by a reconciler that has been watching for a whole lease.
After the reconciler itself could not run (beat down, database out) every heartbeat is old
through no fault of its worker; the first pass then only notes the time, and live workers
renew their heartbeats before the next pass judges them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from apps.pipeline import services
from apps.pipeline.metrics import queue_depths
from apps.pipeline.models import BROKEN, IN_FLIGHT, Job, JobStatus, ReconcilerMark, StageRun, StageStatus

log = logging.getLogger(__name__)

#: pg advisory lock key: one reconciler pass at a time across the deployment
_LOCK_KEY = 0x6D69_7265_636F


@dataclass
class Action:
    """One thing a pass did (or, in a dry run, would do)."""

    run_id: int
    asset_id: str
    stage: str
    status: str
    action: str  # "resend" | "retry" | "dead" | "close-job"
    why: str


@dataclass
class Report:
    actions: list[Action] = field(default_factory=list)
    judged_leases: bool = True
    skipped: str = ""  # why the pass did nothing (another pass holds the lock)

    def count(self, action: str) -> int:
        return sum(1 for a in self.actions if a.action == action)


def _lease() -> timedelta:
    return timedelta(seconds=settings.MEDIAINTEL_STAGE_LEASE)


def _watching_since(now: datetime, dry_run: bool) -> bool:
    """Record this pass; whether the previous one ran within a lease (so leases may be judged)."""
    mark, _ = ReconcilerMark.objects.select_for_update().get_or_create(name="reconciler")
    previous = mark.last_run_at
    if not dry_run:
        mark.last_run_at = now
        mark.save(update_fields=["last_run_at"])
    return previous is not None and now - previous <= _lease()


def reconcile(*, dry_run: bool = False) -> Report:
    """One pass over every non-final stage (see the module docstring). Safe to run anywhere, any time:
    a session advisory lock lets one pass run at a time across the deployment (a second is skipped)."""
    now = timezone.now()
    lease = _lease()
    report = Report()
    with connection.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_lock(%s)", [_LOCK_KEY])
        if not cur.fetchone()[0]:
            report.skipped = "another reconciler pass is running"
            return report
    try:
        with transaction.atomic():
            report.judged_leases = _watching_since(now, dry_run)
        if report.judged_leases:
            _lapsed_leases(now, lease, report, dry_run)
        _overdue_retries(now, lease, report, dry_run)
        _lost_messages(now, report, dry_run)
        _stuck_jobs(report, dry_run)
    finally:
        with connection.cursor() as cur:
            cur.execute("SELECT pg_advisory_unlock(%s)", [_LOCK_KEY])
    if report.actions and not dry_run:
        log.warning("reconciler: %s", ", ".join(f"{a.action} {a.stage} run {a.run_id} ({a.why})"
                                                 for a in report.actions[:20]))
    return report


def _act(report: Report, run: Any, action: str, why: str) -> None:
    report.actions.append(Action(run.pk, str(run.asset_id), run.stage, run.status, action, why))


_FIELDS = ("pk", "asset_id", "stage", "queue", "status", "attempts", "max_attempts", "heartbeat_at", "worker")


def _lapsed_leases(now: datetime, lease: timedelta, report: Report, dry_run: bool) -> None:
    for run in StageRun.objects.filter(status=StageStatus.RUNNING, heartbeat_at__lt=now - lease).only(*_FIELDS):
        silent = (now - run.heartbeat_at).total_seconds()
        if run.attempts >= run.max_attempts:
            why = (f"worker lost on attempt {run.attempts} of {run.max_attempts}: {run.worker or 'a worker'} "
                   f"stopped heartbeating {silent:.0f}s ago (killed, out of memory, crashed or hard time limit)")
            _act(report, run, "dead", why)
            if not dry_run:
                services.bury(run.pk, None, None, "", permanent=False, reason=why)
            continue
        _act(report, run, "retry", f"no heartbeat for {silent:.0f}s")
        if dry_run:
            continue
        moved = StageRun.objects.filter(pk=run.pk, status=StageStatus.RUNNING, heartbeat_at=run.heartbeat_at).update(
            status=StageStatus.RETRYING, next_attempt_at=now,
            error_message=f"worker lost (no heartbeat for {silent:.0f}s); re-dispatched")
        if moved:
            _send(run)


def _overdue_retries(now: datetime, lease: timedelta, report: Report, dry_run: bool) -> None:
    """A retry due more than a lease ago and not claimed, with its queue empty: its delayed message
    is gone (a worker holding it died). Re-sent, then left alone for the re-dispatch bound."""
    again = now + timedelta(seconds=settings.MEDIAINTEL_STAGE_REDISPATCH_AFTER)
    _resend_where_queue_empty(
        StageRun.objects.filter(status=StageStatus.RETRYING, next_attempt_at__lt=now - lease),
        report, dry_run, why=lambda run: "retry overdue, queue empty", mark={"next_attempt_at": again})


def _lost_messages(now: datetime, report: Report, dry_run: bool) -> None:
    """A stage ``queued`` past the re-dispatch bound while its queue is empty: its message is gone."""
    after = timedelta(seconds=settings.MEDIAINTEL_STAGE_REDISPATCH_AFTER)
    _resend_where_queue_empty(
        StageRun.objects.filter(status=StageStatus.QUEUED, queued_at__lt=now - after), report, dry_run,
        why=lambda run: f"queued {(now - run.queued_at).total_seconds():.0f}s, queue empty", mark={"queued_at": now})


def _resend_where_queue_empty(candidates: Any, report: Report, dry_run: bool, why: Any,
                              mark: dict[str, Any]) -> None:
    """Re-send each candidate whose broker queue is empty (a non-empty one is a backlog, an
    unreachable broker answers -1: neither is a loss yet), stamping ``mark`` on it first so it is
    not re-sent again before the bound; the stamp is a conditional UPDATE on the run's status."""
    runs = list(candidates.only(*_FIELDS, "queued_at")[:1000])
    if not runs:
        return
    depths = queue_depths()
    for run in runs:
        if depths.get(run.queue, -1) != 0:
            continue
        _act(report, run, "resend", why(run))
        if not dry_run and StageRun.objects.filter(pk=run.pk, status=run.status).update(**mark):
            _send(run)


def _stuck_jobs(report: Report, dry_run: bool) -> None:
    """Running jobs whose current stages are all final (or pending behind a dead one): close them."""
    active = StageRun.objects.filter(job=OuterRef("pk"), current=True, status__in=IN_FLIGHT)
    for job in Job.objects.filter(status=JobStatus.RUNNING).exclude(Exists(active)).only("pk", "asset_id")[:500]:
        statuses = list(StageRun.objects.filter(asset_id=job.asset_id, current=True).values_list("status", flat=True))
        if any(s in IN_FLIGHT for s in statuses):
            continue
        dead = any(s in BROKEN for s in statuses)
        if not dead and any(s == StageStatus.PENDING for s in statuses):
            continue  # held back by backpressure: release_pending sends it
        report.actions.append(Action(0, str(job.asset_id), "-", JobStatus.RUNNING, "close-job",
                                     "no stage can make progress"))
        if not dry_run:
            with transaction.atomic():
                services.maybe_finish(job.pk, job.asset_id, statuses)


def _send(run: Any) -> None:
    try:
        services.send(run.stage, run.queue, run.pk)
    except Exception as e:  # broker out: the next pass tries again (the run is still overdue)
        log.warning("reconciler could not publish stage %s (run %s): %s", run.stage, run.pk, e)
