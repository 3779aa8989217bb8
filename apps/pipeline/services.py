"""Planning, dispatch and the state transitions of stage runs.

Every transition is a conditional UPDATE on the StageRun row, so a redelivered or
duplicated message can never run a finished stage again, and two workers can never both
claim one stage. Messages are sent only after the transaction that made them due commits.
"""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from psycopg.types.json import Jsonb

from apps.assets.models import MediaAsset, Status
from apps.audit.services import Actor, record
from apps.core import rawsql
from apps.events.services import publish
from apps.pipeline import plans
from apps.pipeline.backpressure import queue_has_room
from apps.pipeline.metrics import SENT_AT_HEADER
from apps.pipeline.models import BROKEN, IN_FLIGHT, SATISFIED, DeadLetter, Job, JobStatus, StageRun, StageStatus
from apps.pipeline.priority import for_asset
from apps.pipeline.versions import stage_spec
from mediacommon.tracing import inject, tracer

log = logging.getLogger(__name__)

STAGE_TASK = "mediaintel.stage.{stage}"


def task_name(stage: str) -> str:
    return STAGE_TASK.format(stage=stage)


def stage_key(asset_id: Any, stage: str, engine_version: str) -> str:
    return f"{asset_id}:{stage}:{engine_version}"


# ------------------------------------------------------------------ planning
def start_pipeline(asset_id: Any, *, reason: str = "ingest", stages: list[str] | None = None,
                   force: bool = False, take_over: bool = False) -> Job | None:
    """Create a Job for the asset's plan and dispatch what is ready.

    Stages already ``done`` under their current engine version are kept (not re-run) unless
    ``force``; ``stages`` restricts the job to those stages (their successors follow). Stages in
    flight are left to their workers unless ``take_over`` names them too (stuck stages).
    Returns None when nothing needs to run.
    """
    with transaction.atomic():
        asset = MediaAsset.objects.select_for_update().get(pk=asset_id)
        plan = plans.plan_for(asset.kind)
        wanted = _closure(plan, stages) if stages else {s.name for s in plan}
        job = Job.objects.create(asset=asset, plan_version=plans.PLAN_VERSION, reason=reason)
        specs = {s.name: stage_spec(s.name) for s in plan}
        keys = {name: stage_key(asset.pk, name, spec.version) for name, spec in specs.items()}
        existing = {r.key: r for r in StageRun.objects.filter(key__in=keys.values())}
        fresh: list[StageRun] = []  # created, or reset to run again
        attach: list[int] = []  # kept as they are, now listed under this job
        touched = 0
        for s in plan:
            run = existing.get(keys[s.name])
            if run is None:
                spec = specs[s.name]
                run = StageRun(asset=asset, stage=s.name, key=keys[s.name], engine=spec.name,
                               engine_version=spec.version)
            elif s.name not in wanted or (run.status in SATISFIED and not force):
                attach.append(run.pk)
                continue
            elif run.status in IN_FLIGHT and not (take_over and s.name in (stages or ())):
                attach.append(run.pk)
                touched += 1
                continue
            run.job = job
            run.needs = list(s.needs)
            run.queue = s.queue
            run.max_attempts = s.max_attempts
            run.status = StageStatus.PENDING
            run.attempts = 0
            run.current = True
            run.error_class = run.error_message = run.traceback = run.skip_reason = ""
            run.queued_at = run.started_at = run.finished_at = run.heartbeat_at = run.next_attempt_at = None
            run.task_id = ""  # a late completion by a previous holder no longer matches
            fresh.append(run)
            touched += 1
        StageRun.objects.bulk_create([r for r in fresh if r.key not in existing])
        for run in fresh:
            if run.key in existing:
                run.save()
        if attach:
            StageRun.objects.filter(pk__in=attach).update(job=job)
        if fresh:  # older engine versions of the stages that run now are superseded
            StageRun.objects.filter(asset=asset, stage__in=[r.stage for r in fresh], current=True).exclude(
                pk__in=[r.pk for r in fresh]).update(current=False)
        if touched == 0:
            job.status = JobStatus.DONE
            job.finished_at = timezone.now()
            job.save(update_fields=["status", "finished_at"])
            return None
        MediaAsset.objects.filter(pk=asset.pk).update(status=Status.QUEUED if reason == "ingest"
                                                      else Status.PROCESSING, updated_at=timezone.now())
        dispatch_ready(job.pk, asset_id=asset.pk)  # a new job: no other transaction can see it yet
    return job


def _closure(plan: list[plans.Stage], names: list[str]) -> set[str]:
    """The named stages and every stage downstream of them."""
    unknown = set(names) - {s.name for s in plan}
    if unknown:
        raise ValueError(f"unknown stage(s) for this kind: {', '.join(sorted(unknown))}")
    out = set(names)
    changed = True
    while changed:
        changed = False
        for s in plan:
            if s.name not in out and out.intersection(s.needs):
                out.add(s.name)
                changed = True
    return out


# ------------------------------------------------------------------ dispatch
_JOB, _RUN, _ASSET = rawsql.table(Job), rawsql.table(StageRun), rawsql.table(MediaAsset)


def dispatch_ready(job_id: Any, asset_id: Any = None) -> int:
    """Queue every pending stage of the job whose needs are satisfied (backpressure permitting).

    Call inside a transaction. It holds the job's row lock (taken here, or already by
    :func:`complete` / :func:`skip`, which pass ``asset_id``), so stages of one job that finish
    at the same moment serialize on it and the last one always sees the others' results: a
    stage that needs several others is queued exactly once, by whichever finishes last. Two
    statements: read the asset's current stages, mark the ready ones ``queued``; the messages
    go out when the transaction commits.
    """
    with connection.cursor() as cur:
        if asset_id is None:
            cur.execute(f"SELECT asset_id FROM {_JOB} WHERE id = %s FOR UPDATE", [job_id])  # noqa: S608
            row = cur.fetchone()
            if row is None:  # deleted with its asset meanwhile
                return 0
            asset_id = row[0]
        cur.execute(f"SELECT r.id, r.stage, r.status, r.needs::text, r.queue, r.job_id, a.kind, a.duration "  # noqa: S608
                    f"FROM {_RUN} r JOIN {_ASSET} a ON a.id = r.asset_id "
                    "WHERE r.asset_id = %s AND r.current", [asset_id])
        rows = cur.fetchall()
        runs = [(pk, stage, status, json.loads(needs), queue, jid) for pk, stage, status, needs, queue, jid, *_ in rows]
        prio = for_asset(rows[0][6], rows[0][7]) if rows else 0
        status_of = {stage: status for _, stage, status, _, _, _ in runs}
        ready = [pk for pk, _, status, needs, queue, jid in runs
                 if status == StageStatus.PENDING and str(jid) == str(job_id)
                 and all(status_of.get(n) in SATISFIED for n in needs) and queue_has_room(queue)]
        sent: list[tuple[int, str, str]] = []
        if ready:
            cur.execute(f"UPDATE {_RUN} SET status = %s, queued_at = %s WHERE id = ANY(%s) AND status = %s "  # noqa: S608
                        "RETURNING id, stage, queue",
                        [StageStatus.QUEUED, timezone.now(), ready, StageStatus.PENDING])
            sent = list(cur)
    for pk, stage, queue in sent:
        status_of[stage] = StageStatus.QUEUED
        transaction.on_commit(lambda s=stage, q=queue, r=pk: _send_or_release(s, q, r, prio))
    maybe_finish(job_id, asset_id, list(status_of.values()))
    return len(sent)


def _send_or_release(stage: str, queue: str, run_id: int, prio: int = 0) -> None:
    """Publish; if the broker is unreachable, put the stage back to ``pending`` for release_pending."""
    try:
        send(stage, queue, run_id, priority=prio)
    except Exception as e:
        log.warning("could not publish stage %s (run %s): %s; left pending", stage, run_id, e)
        StageRun.objects.filter(pk=run_id, status=StageStatus.QUEUED).update(status=StageStatus.PENDING,
                                                                              queued_at=None)


def send(stage: str, queue: str, run_id: int, countdown: float | None = None, priority: int | None = None) -> None:
    """Publish the stage message (by task name: the web process imports no task module).

    ``priority``: the broker priority of the asset's stages (:mod:`apps.pipeline.priority`); None: read
    from the run's asset (one query; dispatch passes it, re-sends and retries do not).

    Its headers carry the publish time (the queue-age metric, apps/pipeline/metrics.py) and the
    current trace context, so the worker's stage span joins the trace that dispatched it.
    """
    from mediaintel.celery import app

    with tracer().start_as_current_span(f"dispatch {stage}", kind=SpanKind.PRODUCER,
                                        attributes={"mediaintel.stage": stage, "mediaintel.queue": queue,
                                                    "mediaintel.run": run_id}):
        if priority is None:
            asset = StageRun.objects.filter(pk=run_id).values("asset__kind", "asset__duration").first() or {}
            priority = for_asset(asset.get("asset__kind"), asset.get("asset__duration"))
        headers = {SENT_AT_HEADER: time.time(), **inject()}
        app.send_task(task_name(stage), args=[run_id], queue=queue, routing_key=queue, countdown=countdown,
                      headers=headers, priority=priority)


def maybe_finish(job_id: Any, asset_id: Any, statuses: list[str] | None = None) -> None:
    """Close the job and set the asset's status when no stage can make progress any more.

    ``statuses`` are those of the asset's current stages when the caller has just read them.
    """
    if statuses is None:
        statuses = list(StageRun.objects.filter(asset_id=asset_id, current=True).values_list("status", flat=True))
    if any(s in IN_FLIGHT for s in statuses):
        return
    failed = any(s in BROKEN for s in statuses)
    if not failed and any(s == StageStatus.PENDING for s in statuses):
        return  # waiting for backpressure release
    now = timezone.now()
    status = JobStatus.FAILED if failed else JobStatus.DONE
    if Job.objects.filter(pk=job_id, status=JobStatus.RUNNING).update(status=status, finished_at=now):
        MediaAsset.objects.filter(pk=asset_id).update(
            status=Status.FAILED if failed else Status.READY, processed_at=now, updated_at=now)
        trace.get_current_span().add_event("asset.failed" if failed else "asset.ready",
                                           {"mediaintel.asset": str(asset_id), "mediaintel.job": str(job_id)})

        record("asset.processed", target_type="asset", target_id=asset_id, actor=Actor.system("pipeline"),
               payload={"job": str(job_id), "status": status})
        publish("asset.failed" if failed else "asset.ready",
                {"asset": asset_id, "job": job_id, "status": status,
                 "moderation_state": MediaAsset.objects.values_list("moderation_state", flat=True).get(pk=asset_id)},
                asset_id=asset_id)


# ------------------------------------------------------------------ worker-side transitions
@dataclass
class Claim:
    run: StageRun
    asset: MediaAsset


_CLAIMABLE = (StageStatus.PENDING, StageStatus.QUEUED, StageStatus.RETRYING)


def claim(run_id: int, worker: str, task_id: str) -> Claim | None:
    """Take the stage for this worker, or None when it is finished or held by a live worker.

    ``pending/queued/retrying`` → ``running`` (attempts+1). A ``running`` stage whose
    heartbeat is older than the lease belonged to a dead worker and is taken over, unless that
    was its last attempt (then :func:`apps.pipeline.reconcile.reconcile` buries it as "worker
    lost"). One statement: claim the run, move a ``queued`` asset to ``processing``, return both rows.

    Table names come from model metadata; every value is a bound parameter.
    """
    now = timezone.now()
    stale = now - timedelta(seconds=settings.MEDIAINTEL_STAGE_LEASE)
    sql = (
        f"WITH c AS (UPDATE {_RUN} SET status = %(running)s, attempts = attempts + 1, worker = %(worker)s, "  # noqa: S608
        "task_id = %(tid)s, started_at = %(now)s, heartbeat_at = %(now)s, next_attempt_at = NULL "
        "WHERE id = %(id)s AND (status = ANY(%(claimable)s) "
        "OR (status = %(running)s AND heartbeat_at < %(stale)s AND attempts < max_attempts)) "
        "RETURNING *), "
        f"a AS (UPDATE {_ASSET} SET status = %(processing)s, updated_at = %(now)s "
        "WHERE id IN (SELECT asset_id FROM c) AND status = %(queued)s RETURNING id) "
        f"SELECT {rawsql.columns(StageRun, 'c')}, {rawsql.columns(MediaAsset, 'm')}, "
        f"EXISTS (SELECT 1 FROM a) FROM c JOIN {_ASSET} m ON m.id = c.asset_id"
    )
    with connection.cursor() as cur:
        cur.execute(sql, {"running": StageStatus.RUNNING, "worker": worker[:200], "tid": task_id[:64], "now": now,
                          "id": run_id, "claimable": list(_CLAIMABLE), "stale": stale,
                          "processing": Status.PROCESSING, "queued": Status.QUEUED})
        row = cur.fetchone()
    if row is None:
        return None
    n = rawsql.width(StageRun)
    run = rawsql.hydrate(StageRun, row[:n])
    asset = rawsql.hydrate(MediaAsset, row[n:-1])
    if row[-1]:  # the statement's own snapshot shows the asset as it was before the update
        asset.status, asset.updated_at = Status.PROCESSING, now
    run.asset = asset
    return Claim(run=run, asset=asset)


def heartbeat(run_id: int, task_id: str) -> bool:
    """Extend the lease; False when the stage is no longer ours (taken over or finished)."""
    return bool(StageRun.objects.filter(pk=run_id, status=StageStatus.RUNNING, task_id=task_id).update(
        heartbeat_at=timezone.now()))


def _finish(run_id: int, task_id: str, fields: dict[str, Any]) -> bool:
    """``running`` (ours) → the state in ``fields``, under the job's row lock; then dispatch successors.

    One statement locks the job row and updates the run, returning what dispatch needs.
    """
    sets = ", ".join(f'"{k}" = %({k})s' for k in fields)
    sql = (f"WITH j AS (SELECT id FROM {_JOB} WHERE id = (SELECT job_id FROM {_RUN} WHERE id = %(id)s) FOR UPDATE) "  # noqa: S608
           f"UPDATE {_RUN} SET {sets} WHERE id = %(id)s AND status = %(running)s AND task_id = %(tid)s "
           "AND job_id IN (SELECT id FROM j) RETURNING job_id, asset_id, stage, engine_version, attempts")
    with connection.cursor() as cur:
        cur.execute(sql, {**fields, "id": run_id, "running": StageStatus.RUNNING, "tid": task_id})
        row = cur.fetchone()
    if row is None:
        return False
    job_id, asset_id, stage, engine_version, attempts = row
    data = {"asset": asset_id, "stage": stage, "run": run_id, "job": job_id, "engine_version": engine_version,
            "attempts": attempts}
    if fields["status"] == StageStatus.SKIPPED:
        publish("stage.skipped", {**data, "reason": fields["skip_reason"]}, asset_id=asset_id)
    else:
        publish("stage.completed", data, asset_id=asset_id)
    dispatch_ready(job_id, asset_id=asset_id)
    return True


def complete(run_id: int, task_id: str, summary: dict[str, Any]) -> bool:
    """Mark done (only if still ours) and queue the successors. Call inside the results' transaction."""
    return _finish(run_id, task_id, {
        "status": StageStatus.DONE, "finished_at": timezone.now(),
        "summary": Jsonb(summary, dumps=lambda o: json.dumps(o, cls=DjangoJSONEncoder)),
        "error_class": "", "error_message": ""})


def skip(run_id: int, task_id: str, reason: str) -> bool:
    with transaction.atomic():
        return _finish(run_id, task_id, {"status": StageStatus.SKIPPED, "finished_at": timezone.now(),
                                         "skip_reason": reason[:300]})


def backoff(attempt: int, base: float = 2.0, cap: float = 300.0) -> float:
    """Exponential backoff with full jitter: uniform in [0.5, 1] × min(cap, base·2^(attempt-1))."""
    return min(cap, base * 2 ** max(attempt - 1, 0)) * random.uniform(0.5, 1.0)


def schedule_retry(run_id: int, task_id: str, exc: BaseException, tb: str) -> float | None:
    """Record a transient failure; the delay before the next attempt, or None when attempts are spent."""
    run = StageRun.objects.get(pk=run_id)
    if run.attempts >= run.max_attempts:
        return None
    delay = backoff(run.attempts)
    with transaction.atomic():
        n = StageRun.objects.filter(pk=run_id, status=StageStatus.RUNNING, task_id=task_id).update(
            status=StageStatus.RETRYING, error_class=type(exc).__name__, error_message=str(exc)[:2000],
            traceback=tb[-20000:], next_attempt_at=timezone.now() + timedelta(seconds=delay))
        if n:
            publish("stage.failed", {**_stage_data(run), "error": f"{type(exc).__name__}: {exc}"[:500],
                                     "retry_in": round(delay, 3)}, asset_id=run.asset_id)
    return delay if n else None


def _stage_data(run: StageRun) -> dict[str, Any]:
    return {"asset": run.asset_id, "stage": run.stage, "run": run.pk, "job": run.job_id,
            "engine_version": run.engine_version, "attempts": run.attempts}


def release_infra(run_id: int, task_id: str, exc: BaseException, delay: float) -> bool:
    """Give back a stage that failed because a dependency (database, broker, storage) was out,
    not because of its own work: ``running`` (ours) → ``retrying`` with the attempt *not* counted.

    The caller re-sends the message; if that send is lost, the reconciler re-sends the overdue retry.
    """
    return bool(StageRun.objects.filter(pk=run_id, status=StageStatus.RUNNING, task_id=task_id).update(
        status=StageStatus.RETRYING, attempts=Greatest(F("attempts") - 1, 0),
        error_class=type(exc).__name__, error_message=f"infrastructure unavailable: {exc}"[:2000],
        next_attempt_at=timezone.now() + timedelta(seconds=delay)))


#: What a DeadLetter says of a stage whose worker process died on every attempt.
WORKER_LOST = "WorkerLost"


def bury(run_id: int, task_id: str | None, exc: BaseException | None, tb: str, *, permanent: bool,
         reason: str | None = None) -> bool:
    """The stage is dead: record why, keep a DeadLetter for replay, and close the job.

    ``task_id`` None buries whoever held it (the reconciler, for a stage whose worker died on
    its last attempt; then ``reason`` says so and ``exc`` is None).
    """
    error_class = type(exc).__name__ if exc is not None else WORKER_LOST
    error = reason or f"{exc}"
    message = error if reason else ("permanent: " if permanent else "gave up after retries: ") + error
    with transaction.atomic():
        qs = StageRun.objects.filter(pk=run_id, status__in=[StageStatus.RUNNING, StageStatus.RETRYING])
        if task_id is not None:
            qs = qs.filter(task_id=task_id)
        n = qs.update(status=StageStatus.DEAD, finished_at=timezone.now(), error_class=error_class,
                      error_message=message[:2000], traceback=tb[-20000:])
        if not n:
            return False
        run = StageRun.objects.get(pk=run_id)
        DeadLetter.objects.create(stage_run=run, task_name=task_name(run.stage), args=[run_id],
                                  error_class=error_class, error=error[:4000], traceback=tb[-20000:])

        record("stage.dead", target_type="asset", target_id=run.asset_id, actor=Actor.system("pipeline"),
               payload={"stage": run.stage, "error": f"{error_class}: {error}"[:500],
                        "attempts": run.attempts, "permanent": permanent})
        publish("stage.dead", {**_stage_data(run), "error": f"{error_class}: {error}"[:500], "permanent": permanent},
                asset_id=run.asset_id)
        maybe_finish(run.job_id, run.asset_id)
    log.error("stage %s of asset %s is dead: %s: %s", run.stage, run.asset_id, error_class, error)
    return True


# ------------------------------------------------------------------ recovery
def replay(dead_letter: DeadLetter) -> bool:
    """Send a dead stage again (attempts reset); its job reopens."""
    with transaction.atomic():
        run = StageRun.objects.select_for_update().get(pk=dead_letter.stage_run_id)
        if run.status != StageStatus.DEAD:
            return False
        DeadLetter.objects.filter(pk=dead_letter.pk).update(replayed_at=timezone.now())
        run.status, run.attempts = StageStatus.PENDING, 0
        run.save(update_fields=["status", "attempts"])
        Job.objects.filter(pk=run.job_id).update(status=JobStatus.RUNNING, finished_at=None)
        MediaAsset.objects.filter(pk=run.asset_id).update(status=Status.PROCESSING)
        dispatch_ready(run.job_id)
    return True


def release_pending(batch: int = 200) -> int:
    """Dispatch pending stages held back by backpressure, in bounded batches."""
    job_ids = list(StageRun.objects.filter(status=StageStatus.PENDING, current=True, job__status=JobStatus.RUNNING)
                   .values_list("job_id", flat=True).distinct()[:batch])
    sent = 0
    for job_id in job_ids:
        with transaction.atomic():
            sent += dispatch_ready(job_id)
    return sent
