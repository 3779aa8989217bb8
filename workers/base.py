"""PipelineTask: the base of every stage task.

Life of a message: claim the StageRun with a conditional UPDATE (a finished stage or one
held by a live worker makes the message a no-op), heartbeat while running, run the stage,
write results and mark done in one transaction (successors are dispatched on commit).
Transient errors retry with exponential backoff and jitter up to the stage's attempts;
permanent errors, and the last transient one, make the stage ``dead`` with a DeadLetter.

Infrastructure errors (the database, the broker or the blob store unreachable) are not the
stage's fault and never consume its message or an attempt: the task waits for the dependency
(up to ``MEDIAINTEL_INFRA_WAIT`` s) and then runs (before the claim) or gives the stage back as
``retrying`` with the attempt uncounted (after it); if the dependency stays out, the message is
rejected back to its queue. Whatever is lost anyway (a worker killed, a message dropped) the
reconciler (apps/pipeline/reconcile.py) finds from the database and sends again.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from celery import Task
from celery.exceptions import Reject, SoftTimeLimitExceeded
from django.conf import settings
from django.db import (
    DatabaseError,
    InterfaceError,
    OperationalError,
    close_old_connections,
    connection,
    transaction,
)
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from apps.core.logging import task_id as task_id_var
from mediacommon.metrics import STAGE_QUEUE_WAIT, STAGE_RUNNING, STAGE_RUNS, STAGE_SECONDS
from mediacommon.tracing import HEADERS, extract, tracer
from workers.engines.base import EngineUnavailable, PermanentEngineError, TransientEngineError

log = logging.getLogger("mediaintel.stage")


TRANSIENT = (TransientEngineError, OperationalError, InterfaceError, ConnectionError, TimeoutError,
             SoftTimeLimitExceeded, OSError)


class InfrastructureUnavailable(Exception):
    """A dependency stayed unreachable for ``MEDIAINTEL_INFRA_WAIT`` seconds."""


#: Connection-level exception class names of the broker and blob-store clients, by top-level module.
_CLIENT_CONNECTION_ERRORS = {
    "redis": ("ConnectionError", "TimeoutError", "BusyLoadingError"),
    "kombu": ("OperationalError", "ConnectionError", "RecoverableConnectionError"),
    "amqp": ("ConnectionError", "RecoverableConnectionError", "ConnectionForced"),
    "botocore": ("EndpointConnectionError", "ConnectionClosedError", "ConnectTimeoutError", "ReadTimeoutError",
                 "ProxyConnectionError"),
    "urllib3": ("NewConnectionError", "ConnectTimeoutError", "ReadTimeoutError", "ProtocolError"),
}
_DEPENDENCY = {"redis": "broker", "kombu": "broker", "amqp": "broker", "botocore": "blob store",
               "urllib3": "blob store"}


def is_infrastructure_error(e: BaseException) -> bool:
    """The database, the broker or the blob store could not be reached (not the stage's own failure).

    Django's ``OperationalError``/``InterfaceError`` (connection refused, server closed the
    connection, admin shutdown) and the connection errors of the Redis, AMQP and S3 clients.
    A database error raised by a bad statement (``DataError``, ``IntegrityError``) is not one.
    """
    if isinstance(e, OperationalError | InterfaceError):
        return True
    names = _CLIENT_CONNECTION_ERRORS.get(type(e).__module__.split(".")[0], ())
    return any(cls.__name__ in names for cls in type(e).__mro__)


def _dependency(e: BaseException) -> str:
    return _DEPENDENCY.get(type(e).__module__.split(".")[0], "database")


def wait_for_infrastructure(action: Any, what: str) -> Any:
    """``action()`` until it stops failing with infrastructure errors, with capped backoff, for at
    most ``MEDIAINTEL_INFRA_WAIT`` seconds (then :class:`InfrastructureUnavailable`).

    A failed database connection is closed before the next try, so the next one reconnects (a
    broker or blob-store error leaves the database connection alone).
    """
    deadline = time.monotonic() + settings.MEDIAINTEL_INFRA_WAIT
    delay = 0.5
    while True:
        try:
            return action()
        except Exception as e:
            if not is_infrastructure_error(e):
                raise
            if _dependency(e) == "database":  # a broken connection stays broken: reconnect next try
                connection.close()
            if time.monotonic() + delay > deadline:
                raise InfrastructureUnavailable(f"{what}: {type(e).__name__}: {e}") from e
            log.warning("%s: %s unreachable (%s); waiting %.1fs", what, _dependency(e), e, delay)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


class StageSkipped(Exception):
    """The stage does not apply (no audio track, engine not configured): ``skipped`` with this reason."""


class PermanentStageError(Exception):
    """Will never succeed as is (corrupt media, missing weights): dead at once."""


@dataclass
class StageContext:
    """What a stage implementation gets: its run, its asset, and the media on local disk.

    With ``deferred`` set (every stage but those declared ``atomic``), :meth:`save` and
    :meth:`then` only queue their writes; :meth:`flush` applies them in order inside the short
    transaction that also marks the stage done. So no database transaction is open while a model
    runs, and a stage's rows still appear together with its ``done``, or not at all.
    """

    run: Any
    asset: Any
    _tmp: list[str] = field(default_factory=list)
    deferred: bool = False
    _writes: list[Callable[[], Any]] = field(default_factory=list)

    def save(self, model: type, rows: list[dict[str, Any]], stage: str | None = None) -> int:
        """Replace this stage's rows of ``model`` (idempotent), labelled with the run's engine version."""
        from apps.insights.services import replace

        rows = list(rows)
        self.then(lambda: replace(model, asset_id=self.asset.pk, stage=stage or self.run.stage,
                                  engine=self.run.engine, engine_version=self.run.engine_version, rows=rows))
        return len(rows)

    def then(self, write: Callable[[], Any]) -> None:
        """A database write that must follow this stage's saves (e.g. derived columns over its rows)."""
        if self.deferred:
            self._writes.append(write)
        else:
            write()

    def flush(self) -> None:
        """Apply the queued writes, in order (call inside the transaction that completes the stage)."""
        writes, self._writes = self._writes, []
        for write in writes:
            write()

    def media_path(self) -> str:
        """A local path to the original bytes: the blob itself for local storage, else a copy in the
        host's bounded blob cache that stays on disk until this task ends (workers/blobcache.py)."""
        from apps.assets import storage
        from workers import blobcache

        local = storage.local_path(self.asset.storage_key)
        if local and os.path.exists(local):
            return local
        return blobcache.media_path(self.asset.sha256, self.asset.storage_key)


class _Heartbeat(threading.Thread):
    """Extends the stage's lease every third of it while the stage runs."""

    def __init__(self, run_id: int, task_id: str) -> None:
        super().__init__(daemon=True, name=f"heartbeat-{run_id}")
        self.run_id, self.task_id = run_id, task_id
        self.stop = threading.Event()
        self.lost = False

    def run(self) -> None:
        from apps.pipeline.services import heartbeat

        every = max(settings.MEDIAINTEL_STAGE_LEASE / 3, 0.5)
        try:
            while not self.stop.wait(every):
                try:
                    if not heartbeat(self.run_id, self.task_id):
                        self.lost = True
                        return
                except DatabaseError as e:
                    log.warning("heartbeat failed for run %s: %s", self.run_id, e)
                    connection.close()  # a broken connection stays broken: reconnect next time
        finally:
            connection.close()


def _inject_fault(ctx: StageContext, stage: str) -> None:
    """Chaos hook for reliability tests, off unless ``MEDIAINTEL_FAULT_INJECTION=1``.

    ``asset.metadata["_faults"][stage]`` may hold ``{"sleep": s}`` (every attempt),
    ``{"sleep_first": s}`` (first attempt only), ``{"transient": n}`` (fail the first n attempts)
    ``{"permanent": true}`` (until ``_faults`` is cleared) or ``{"kill": true}`` (SIGKILL the
    worker process running the stage, every attempt).
    """
    if not settings.MEDIAINTEL_FAULT_INJECTION:
        return
    from apps.assets.models import MediaAsset

    faults = (MediaAsset.objects.values_list("metadata", flat=True).get(pk=ctx.asset.pk) or {}).get("_faults", {})
    f = faults.get(stage) or {}
    if f.get("sleep"):
        time.sleep(float(f["sleep"]))
    if f.get("sleep_first") and ctx.run.attempts == 1:
        time.sleep(float(f["sleep_first"]))
    if ctx.run.attempts <= int(f.get("transient", 0)):
        raise TransientEngineError(f"injected transient fault (attempt {ctx.run.attempts})")
    if f.get("permanent"):
        raise PermanentStageError("injected permanent fault")
    if f.get("kill"):  # the process dies mid-stage on every attempt (a segfault, an OOM kill)
        os.kill(os.getpid(), signal.SIGKILL)


class PipelineTask(Task):
    """Base class of stage tasks; subclasses set ``stage`` and implement :meth:`execute`."""

    abstract = True
    acks_late = True
    reject_on_worker_lost = True
    stage: str = ""
    atomic_execute: bool = False  # True: execute() runs inside the completing transaction (no model runs)

    def execute(self, ctx: StageContext) -> dict[str, Any]:
        """Compute the stage's results and store them with ``ctx.save``/``ctx.then``; return a summary.

        Runs with no transaction open (the writes are queued and applied with the completion),
        unless the stage is ``atomic_execute``.
        """
        raise NotImplementedError

    def run(self, run_id: int) -> str:
        """Continue the dispatcher's trace (message headers) in a span for this delivery."""
        parent = extract({h: getattr(self.request, h, None) for h in HEADERS})
        with tracer().start_as_current_span(f"stage {self.stage}", context=parent, kind=SpanKind.CONSUMER,
                                            attributes={"mediaintel.stage": self.stage,
                                                        "mediaintel.run": run_id}) as span:
            outcome = self._run(run_id)
            span.set_attribute("mediaintel.outcome", outcome)
            return outcome

    def _observed(self, ctx: StageContext, tid: str) -> str:
        """Run a claimed stage; count its outcome and time it (worker-side metrics)."""
        run = ctx.run
        queue = run.queue or ""
        if run.queued_at and run.started_at:
            STAGE_QUEUE_WAIT.labels(self.stage, queue).observe(max((run.started_at - run.queued_at).total_seconds(), 0))
        trace.get_current_span().set_attributes({"mediaintel.asset": str(ctx.asset.pk),
                                                 "mediaintel.attempt": run.attempts})
        running = STAGE_RUNNING.labels(self.stage)
        running.inc()
        t0, outcome = time.perf_counter(), "error"
        try:
            outcome = self._run_claimed(ctx, tid)
            return outcome
        except InfrastructureUnavailable as e:  # could not even record the outcome: redeliver
            outcome = "requeued"
            log.error("%s; the message goes back to its queue", e)
            raise Reject(str(e), requeue=True) from e
        finally:
            running.dec()
            STAGE_RUNS.labels(self.stage, queue, outcome).inc()
            STAGE_SECONDS.labels(self.stage, outcome).observe(time.perf_counter() - t0)

    def _run(self, run_id: int) -> str:
        from apps.pipeline import services

        close_old_connections()
        tid = self.request.id or ""
        token = task_id_var.set(tid)
        worker = f"{socket.gethostname()}:{os.getpid()}"
        try:
            try:
                claimed = wait_for_infrastructure(lambda: services.claim(run_id, worker, tid), f"claim of run {run_id}")
            except InfrastructureUnavailable as e:
                log.error("%s; the message goes back to its queue", e)
                raise Reject(str(e), requeue=True) from e
            if claimed is None:
                log.info("stage run %s not claimable (finished or held by a live worker): no-op", run_id)
                STAGE_RUNS.labels(self.stage, "", "noop").inc()
                return "noop"
            ctx = StageContext(run=claimed.run, asset=claimed.asset)
            return self._observed(ctx, tid)
        finally:
            task_id_var.reset(token)
            close_old_connections()

    def _run_claimed(self, ctx: StageContext, tid: str) -> str:
        from apps.pipeline import services

        run_id = ctx.run.pk
        beat = _Heartbeat(run_id, tid)
        beat.start()
        t0 = time.perf_counter()
        try:
            _inject_fault(ctx, self.stage)
            if self.atomic_execute:  # writes as it goes (e.g. decisions): all of it in one transaction
                with transaction.atomic():
                    if not self._complete(ctx, tid, beat, self._execute(ctx, t0)):
                        return "lost"
            else:  # the model runs with no transaction open; its writes are applied in a short one
                ctx.deferred = True
                summary = self._execute(ctx, t0)
                with transaction.atomic():
                    ctx.flush()
                    if not self._complete(ctx, tid, beat, summary):
                        return "lost"
            log.info("stage done", extra={"stage": self.stage, "run": run_id, "asset": str(ctx.asset.pk),
                                          "seconds": round(time.perf_counter() - t0, 3),
                                          "attempt": ctx.run.attempts})
            return "done"
        except (StageSkipped, EngineUnavailable) as e:
            reason = str(e)
            wait_for_infrastructure(lambda: services.skip(run_id, tid, reason), f"skip of run {run_id}")
            log.info("stage %s skipped: %s", self.stage, e)
            return "skipped"
        except Exception as e:
            if is_infrastructure_error(e):
                return self._give_back(ctx, tid, e)
            if isinstance(e, TRANSIENT) and not isinstance(e, PermanentStageError | PermanentEngineError):
                return self._retry(ctx, tid, e, traceback.format_exc())
            # permanent by its own word, or an unexpected bug: never retried blindly, always visible
            tb, err = traceback.format_exc(), e
            wait_for_infrastructure(lambda: services.bury(run_id, tid, err, tb, permanent=True),
                                    f"dead letter of run {run_id}")
            return "dead"
        finally:
            beat.stop.set()
            beat.join(timeout=5)

    def _execute(self, ctx: StageContext, t0: float) -> dict[str, Any]:
        summary = {"noop": True} if settings.MEDIAINTEL_NOOP_STAGES else (self.execute(ctx) or {})
        summary.setdefault("seconds", round(time.perf_counter() - t0, 3))
        return summary

    def _complete(self, ctx: StageContext, tid: str, beat: _Heartbeat, summary: dict[str, Any]) -> bool:
        """Mark the run done inside the caller's transaction; a run taken over meanwhile rolls it back."""
        from apps.pipeline import services

        if beat.lost or not services.complete(ctx.run.pk, tid, summary):
            transaction.set_rollback(True)
            log.warning("stage %s run %s was taken over; results discarded", self.stage, ctx.run.pk)
            return False
        return True

    def _retry(self, ctx: StageContext, tid: str, e: BaseException, tb: str) -> str:
        """The stage's own transient failure: counted; retried with backoff, or dead when spent."""
        from apps.pipeline import services

        run_id = ctx.run.pk
        close_old_connections()
        delay = wait_for_infrastructure(lambda: services.schedule_retry(run_id, tid, e, tb), f"retry of run {run_id}")
        if delay is None:
            wait_for_infrastructure(lambda: services.bury(run_id, tid, e, tb, permanent=False),
                                    f"dead letter of run {run_id}")
            return "dead"
        log.warning("stage %s transient failure (%s); retry in %.1fs", self.stage, e, delay)
        self._resend(ctx, delay)
        return "retrying"

    def _give_back(self, ctx: StageContext, tid: str, e: BaseException) -> str:
        """A dependency failed under the stage: wait for it, then hand the stage back uncounted."""
        from apps.pipeline import services

        run_id = ctx.run.pk
        log.warning("stage %s run %s: %s unreachable (%s): giving the stage back", self.stage, run_id,
                    _dependency(e), e)
        delay = services.backoff(1)
        try:
            released = wait_for_infrastructure(lambda: services.release_infra(run_id, tid, e, delay),
                                               f"give-back of run {run_id}")
        except InfrastructureUnavailable as gone:
            # the row still says ``running`` (ours): the redelivered message, or the reconciler once
            # the lease lapses, takes the stage over
            log.error("%s; the message goes back to its queue", gone)
            raise Reject(str(gone), requeue=True) from gone
        if released:
            self._resend(ctx, delay)
        return "retrying"

    def _resend(self, ctx: StageContext, delay: float) -> None:
        """Publish the next attempt; if the broker is out, the reconciler re-sends the overdue retry."""
        from apps.pipeline import services

        try:
            services.send(self.stage, ctx.run.queue, ctx.run.pk, countdown=delay)
        except Exception as e:
            log.warning("could not publish the retry of run %s (%s): the reconciler will", ctx.run.pk, e)
