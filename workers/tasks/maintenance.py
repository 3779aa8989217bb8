"""Periodic maintenance (beat): release held-back stages, reconcile every non-final stage, sweep blob caches."""

from __future__ import annotations

import logging

from celery.worker.control import control_command

from mediaintel.celery import app

SWEEP_BLOB_CACHE = "mediaintel_sweep_blob_cache"


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


@app.task(name="mediaintel.maintenance.sweep_blob_caches", ignore_result=True)
def sweep_blob_caches() -> None:
    """Ask every worker (a broadcast: each host has its own cache) to sweep its blob cache."""
    app.control.broadcast(SWEEP_BLOB_CACHE, reply=False)


@control_command(name=SWEEP_BLOB_CACHE)
def sweep_blob_cache(state: object) -> dict[str, object]:
    """Remote control command, run in each worker's main process: drop cached copies of deleted
    assets' blobs and enforce the cache bounds (workers/blobcache.py)."""
    from workers import blobcache

    try:
        return {"ok": blobcache.sweep()}
    except Exception as e:  # a sweep never takes the worker down; the next one retries
        logging.getLogger("mediaintel.blobcache").exception("blob cache sweep failed")
        return {"error": f"{type(e).__name__}: {e}"}


@control_command(args=[("sha256s", list)], signature="<sha256s>")
def mediaintel_evict_blobs(state: object, sha256s: list[str]) -> dict[str, int]:
    """Broadcast by asset deletion: every worker drops its cached copies of deleted contents at once
    (a copy in use by a running stage goes on the next sweep)."""
    from workers import blobcache

    return {"evicted": blobcache.from_settings().drop(list(sha256s or []))}
