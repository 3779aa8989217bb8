"""Periodic maintenance (beat): release held-back stages, reconcile every non-final stage."""

from __future__ import annotations

from mediaintel.celery import app


@app.task(name="mediaintel.pipeline.release_pending", ignore_result=True)
def release_pending() -> int:
    from apps.pipeline.services import release_pending as release

    return release()


@app.task(name="mediaintel.pipeline.reconcile", ignore_result=True, expires=30)
def reconcile() -> int:
    """One reconciler pass (apps/pipeline/reconcile.py): lost messages, lapsed leases, stuck jobs."""
    from apps.pipeline.reconcile import reconcile as run

    return len(run().actions)


@app.task(name="mediaintel.pipeline.reap_stalled", ignore_result=True, expires=30)
def reap_stalled() -> int:
    """The reconciler's former name, for messages sent by a beat of an earlier release."""
    return reconcile()


@app.task(name="mediaintel.maintenance.ping", ignore_result=False)
def ping(value: str = "pong") -> str:
    """Round trip check used by health tooling and tests."""
    return value


@app.task(name="mediaintel.maintenance.sample_queue_depths", ignore_result=True)
def sample_queue_depths() -> dict[str, int]:
    import logging

    from apps.pipeline.metrics import queue_depths

    depths = queue_depths()
    logging.getLogger("mediaintel.queues").info("queue depths", extra={"depths": depths})
    return depths
