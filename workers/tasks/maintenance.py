"""Periodic maintenance (beat): release held-back stages, re-dispatch stalled ones."""

from __future__ import annotations

from celery.worker.control import control_command

from mediaintel.celery import app


@app.task(name="mediaintel.pipeline.release_pending", ignore_result=True)
def release_pending() -> int:
    from apps.pipeline.services import release_pending as release

    return release()


@app.task(name="mediaintel.pipeline.reap_stalled", ignore_result=True)
def reap_stalled() -> int:
    from apps.pipeline.services import reap_stalled as reap

    return reap()


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


@control_command(args=[("sha256s", list)], signature="<sha256s>")
def mediaintel_evict_blobs(state, sha256s: list[str]) -> dict[str, int]:
    """Broadcast by asset deletion: every worker drops its cached copies of deleted contents."""
    from apps.assets.storage import evict_cached

    return {"evicted": evict_cached(list(sha256s or []))}
