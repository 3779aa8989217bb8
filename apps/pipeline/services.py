"""Planning, dispatch and the state transitions of stage runs.

Every transition is a conditional UPDATE on the StageRun row, so a redelivered or
duplicated message can never run a finished stage again, and two workers can never both
claim one stage. Messages are sent only after the transaction that made them due commits.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.assets.models import MediaAsset, Status
from apps.pipeline import plans
from apps.pipeline.models import IN_FLIGHT, SATISFIED, DeadLetter, Job, JobStatus, StageRun, StageStatus
from apps.pipeline.versions import stage_spec

log = logging.getLogger(__name__)

STAGE_TASK = "mediaintel.stage.{stage}"


def task_name(stage: str) -> str:
    return STAGE_TASK.format(stage=stage)


def stage_key(asset_id: Any, stage: str, engine_version: str) -> str:
    return f"{asset_id}:{stage}:{engine_version}"


# ------------------------------------------------------------------ planning
def start_pipeline(asset_id: Any, *, reason: str = "ingest", stages: list[str] | None = None,
                   force: bool = False) -> Job | None:
    """Create a Job for the asset's plan and dispatch what is ready.

    Stages already ``done`` under their current engine version are kept (not re-run) unless
    ``force``; ``stages`` restricts the job to those stages (their successors follow).
    Returns None when nothing needs to run.
    """
    with transaction.atomic():
        asset = MediaAsset.objects.select_for_update().get(pk=asset_id)
        plan = plans.plan_for(asset.kind)
        wanted = _closure(plan, stages) if stages else {s.name for s in plan}
        job = Job.objects.create(asset=asset, plan_version=plans.PLAN_VERSION, reason=reason)
        touched = 0
        for s in plan:
            spec = stage_spec(s.name)
            key = stage_key(asset.pk, s.name, spec.version)
            run = StageRun.objects.filter(key=key).first()
            if run is None:
                run = StageRun(asset=asset, stage=s.name, key=key, engine=spec.name, engine_version=spec.version)
            elif s.name not in wanted or (run.status in SATISFIED and not force):
                run.job = job
                run.save(update_fields=["job"])
                continue
            elif run.status in IN_FLIGHT:
                run.job = job
                run.save(update_fields=["job"])
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
            run.save()
            StageRun.objects.filter(asset=asset, stage=s.name).exclude(pk=run.pk).update(current=False)
            touched += 1
        if touched == 0:
            job.status = JobStatus.DONE
            job.finished_at = timezone.now()
            job.save(update_fields=["status", "finished_at"])
            return None
        MediaAsset.objects.filter(pk=asset.pk).update(status=Status.QUEUED if reason == "ingest"
                                                      else Status.PROCESSING, updated_at=timezone.now())
        dispatch_ready(job.pk)
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
def _current_runs(asset_id: Any) -> dict[str, StageRun]:
    return {r.stage: r for r in StageRun.objects.filter(asset_id=asset_id, current=True)}


def dispatch_ready(job_id: Any) -> int:
    """Queue every pending stage of the job whose needs are satisfied (backpressure permitting)."""
    from apps.pipeline.backpressure import queue_has_room

    job = Job.objects.get(pk=job_id)
    runs = _current_runs(job.asset_id)
    sent = 0
    for run in runs.values():
        if run.status != StageStatus.PENDING or run.job_id != job.pk:
            continue
        if not all(runs.get(n) is not None and runs[n].status in SATISFIED for n in run.needs):
            continue
        if not queue_has_room(run.queue):
            continue  # left pending; release_pending picks it up when the queue drains
        if _mark_queued(run.pk):
            sent += 1
    _maybe_finish(job)
    return sent


def _mark_queued(run_id: int) -> bool:
    now = timezone.now()
    n = StageRun.objects.filter(pk=run_id, status=StageStatus.PENDING).update(
        status=StageStatus.QUEUED, queued_at=now)
    if n:
        run = StageRun.objects.only("stage", "queue").get(pk=run_id)
        transaction.on_commit(lambda: _send_or_release(run.stage, run.queue, run_id))
    return bool(n)


def _send_or_release(stage: str, queue: str, run_id: int) -> None:
    """Publish; if the broker is unreachable, put the stage back to ``pending`` for release_pending."""
    try:
        send(stage, queue, run_id)
    except Exception as e:
        log.warning("could not publish stage %s (run %s): %s; left pending", stage, run_id, e)
        StageRun.objects.filter(pk=run_id, status=StageStatus.QUEUED).update(status=StageStatus.PENDING,
                                                                              queued_at=None)


def send(stage: str, queue: str, run_id: int, countdown: float | None = None) -> None:
    """Publish the stage message (by task name: the web process imports no task module)."""
    from mediaintel.celery import app

    app.send_task(task_name(stage), args=[run_id], queue=queue, routing_key=queue, countdown=countdown)


def _maybe_finish(job: Job) -> None:
    """Close the job and set the asset's status when no stage can make progress any more."""
    runs = list(StageRun.objects.filter(asset_id=job.asset_id, current=True).values("status", "job_id"))
    if any(r["status"] in IN_FLIGHT for r in runs):
        return
    failed = any(r["status"] in (StageStatus.DEAD, StageStatus.FAILED) for r in runs)
    if not failed and any(r["status"] == StageStatus.PENDING for r in runs):
        return  # waiting for backpressure release
    now = timezone.now()
    status = JobStatus.FAILED if failed else JobStatus.DONE
    if Job.objects.filter(pk=job.pk, status=JobStatus.RUNNING).update(status=status, finished_at=now):
        MediaAsset.objects.filter(pk=job.asset_id).update(
            status=Status.FAILED if failed else Status.READY, processed_at=now, updated_at=now)
        from apps.audit.services import Actor, record
        from apps.moderation.services import emit

        record("asset.processed", target_type="asset", target_id=job.asset_id, actor=Actor.system("pipeline"),
               payload={"job": str(job.pk), "status": status})
        emit("asset.processed", {"asset": str(job.asset_id), "job": str(job.pk), "status": status,
                                 "moderation_state": MediaAsset.objects.values_list("moderation_state", flat=True)
                                 .get(pk=job.asset_id)})


# ------------------------------------------------------------------ worker-side transitions
@dataclass
class Claim:
    run: StageRun
    asset: MediaAsset


def claim(run_id: int, worker: str, task_id: str) -> Claim | None:
    """Take the stage for this worker, or None when it is finished or held by a live worker.

    ``pending/queued/retrying`` → ``running`` (attempts+1). A ``running`` stage whose
    heartbeat is older than the lease belonged to a dead worker and is taken over.
    """
    now = timezone.now()
    stale = now - timedelta(seconds=settings.MEDIAINTEL_STAGE_LEASE)
    claimable = Q(status__in=[StageStatus.PENDING, StageStatus.QUEUED, StageStatus.RETRYING]) | Q(
        status=StageStatus.RUNNING, heartbeat_at__lt=stale)
    n = StageRun.objects.filter(claimable, pk=run_id).update(
        status=StageStatus.RUNNING, attempts=F("attempts") + 1, worker=worker[:200], task_id=task_id[:64],
        started_at=now, heartbeat_at=now, next_attempt_at=None)
    if not n:
        return None
    run = StageRun.objects.select_related("asset").get(pk=run_id)
    MediaAsset.objects.filter(pk=run.asset_id, status=Status.QUEUED).update(status=Status.PROCESSING,
                                                                            updated_at=now)
    return Claim(run=run, asset=run.asset)


def heartbeat(run_id: int, task_id: str) -> bool:
    """Extend the lease; False when the stage is no longer ours (taken over or finished)."""
    return bool(StageRun.objects.filter(pk=run_id, status=StageStatus.RUNNING, task_id=task_id).update(
        heartbeat_at=timezone.now()))


def complete(run_id: int, task_id: str, summary: dict[str, Any]) -> bool:
    """Mark done (only if still ours) and dispatch successors on commit. Call inside the results' transaction."""
    now = timezone.now()
    n = StageRun.objects.filter(pk=run_id, status=StageStatus.RUNNING, task_id=task_id).update(
        status=StageStatus.DONE, finished_at=now, summary=summary, error_class="", error_message="")
    if n:
        job_id = StageRun.objects.values_list("job_id", flat=True).get(pk=run_id)
        transaction.on_commit(lambda: _dispatch_in_tx(job_id))
    return bool(n)


def _dispatch_in_tx(job_id: Any) -> None:
    with transaction.atomic():
        dispatch_ready(job_id)


def skip(run_id: int, task_id: str, reason: str) -> bool:
    with transaction.atomic():
        n = StageRun.objects.filter(pk=run_id, status=StageStatus.RUNNING, task_id=task_id).update(
            status=StageStatus.SKIPPED, finished_at=timezone.now(), skip_reason=reason[:300])
        if n:
            job_id = StageRun.objects.values_list("job_id", flat=True).get(pk=run_id)
            transaction.on_commit(lambda: _dispatch_in_tx(job_id))
    return bool(n)


def backoff(attempt: int, base: float = 2.0, cap: float = 300.0) -> float:
    """Exponential backoff with full jitter: uniform in [0.5, 1] × min(cap, base·2^(attempt-1))."""
    return min(cap, base * 2 ** max(attempt - 1, 0)) * random.uniform(0.5, 1.0)


def schedule_retry(run_id: int, task_id: str, exc: BaseException, tb: str) -> float | None:
    """Record a transient failure; the delay before the next attempt, or None when attempts are spent."""
    run = StageRun.objects.get(pk=run_id)
    if run.attempts >= run.max_attempts:
        return None
    delay = backoff(run.attempts)
    n = StageRun.objects.filter(pk=run_id, status=StageStatus.RUNNING, task_id=task_id).update(
        status=StageStatus.RETRYING, error_class=type(exc).__name__, error_message=str(exc)[:2000],
        traceback=tb[-20000:], next_attempt_at=timezone.now() + timedelta(seconds=delay))
    return delay if n else None


def bury(run_id: int, task_id: str, exc: BaseException, tb: str, *, permanent: bool) -> bool:
    """The stage is dead: record why, keep a DeadLetter for replay, and close the job."""
    with transaction.atomic():
        n = StageRun.objects.filter(pk=run_id, status__in=[StageStatus.RUNNING, StageStatus.RETRYING],
                                    task_id=task_id).update(
            status=StageStatus.DEAD, finished_at=timezone.now(), error_class=type(exc).__name__,
            error_message=(("permanent: " if permanent else "gave up after retries: ") + str(exc))[:2000],
            traceback=tb[-20000:])
        if not n:
            return False
        run = StageRun.objects.get(pk=run_id)
        DeadLetter.objects.create(stage_run=run, task_name=task_name(run.stage), args=[run_id],
                                  error_class=type(exc).__name__, error=str(exc)[:4000], traceback=tb[-20000:])
        from apps.audit.services import Actor, record

        record("stage.dead", target_type="asset", target_id=run.asset_id, actor=Actor.system("pipeline"),
               payload={"stage": run.stage, "error": f"{type(exc).__name__}: {exc}"[:500],
                        "attempts": run.attempts, "permanent": permanent})
        _maybe_finish(run.job)
    log.error("stage %s of asset %s is dead: %s", run.stage, run.asset_id, exc)
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


def reap_stalled() -> int:
    """Re-dispatch stages whose worker died (heartbeat older than the lease) and overdue retries.

    A stalled ``running`` stage becomes ``retrying`` (its attempt stays counted); a queued
    message lost with its broker is sent again after the visibility timeout.
    """
    now = timezone.now()
    lease = timedelta(seconds=settings.MEDIAINTEL_STAGE_LEASE)
    lost = timedelta(seconds=settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"])
    n = 0
    candidates = StageRun.objects.filter(
        Q(status=StageStatus.RUNNING, heartbeat_at__lt=now - lease)
        | Q(status=StageStatus.RETRYING, next_attempt_at__lt=now - lease)
        | Q(status=StageStatus.QUEUED, queued_at__lt=now - lost)).only("pk", "stage", "queue", "status")
    for run in candidates:
        moved = StageRun.objects.filter(pk=run.pk, status=run.status).filter(
            Q(status=StageStatus.RUNNING, heartbeat_at__lt=now - lease)
            | Q(status=StageStatus.RETRYING, next_attempt_at__lt=now - lease)
            | Q(status=StageStatus.QUEUED, queued_at__lt=now - lost))
        if run.status == StageStatus.QUEUED:
            ok = moved.update(queued_at=now)
        else:
            ok = moved.update(status=StageStatus.RETRYING, next_attempt_at=now,
                              error_message="worker lost; re-dispatched" if run.status == StageStatus.RUNNING
                              else F("error_message"))
        if ok:
            log.warning("re-dispatching stalled stage %s (was %s), run %s", run.stage, run.status, run.pk)
            send(run.stage, run.queue, run.pk)
            n += 1
    return n


def release_pending(batch: int = 200) -> int:
    """Dispatch pending stages held back by backpressure, in bounded batches."""
    job_ids = list(StageRun.objects.filter(status=StageStatus.PENDING, current=True, job__status=JobStatus.RUNNING)
                   .values_list("job_id", flat=True).distinct()[:batch])
    sent = 0
    for job_id in job_ids:
        with transaction.atomic():
            sent += dispatch_ready(job_id)
    return sent
