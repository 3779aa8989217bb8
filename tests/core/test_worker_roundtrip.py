"""A real Celery worker process executes tasks routed by mediacommon/routing.py."""

from __future__ import annotations

import pytest

from mediacommon.routing import QUEUES, queues_for_role


def test_routing_roles():
    assert set(queues_for_role("gpu")) == {"transcribe", "detect", "embed", "search"}
    assert queues_for_role("search") == ("search",)  # interactive only: never behind pipeline stages
    assert set(queues_for_role("cpu", gpu_workers=False)) == set(QUEUES)
    assert set(queues_for_role("cpu", gpu_workers=True)).isdisjoint(queues_for_role("gpu"))
    with pytest.raises(ValueError):
        queues_for_role("tpu")


@pytest.mark.django_db(transaction=True)
def test_worker_subprocess_runs_a_routed_task(start_worker):
    import redis
    from celery.result import AsyncResult  # noqa: F401
    from django.conf import settings

    from mediaintel.celery import app

    start_worker(role="cpu", concurrency=1, name="roundtrip")
    # maintenance queue, by the routing table: the worker must pick it up and run it
    r = redis.Redis.from_url(settings.BROKER_URL)
    app.send_task("mediaintel.maintenance.ping", args=["hello"], queue="maintenance")
    from tests.conftest import wait_for

    wait_for(lambda: r.llen("maintenance") == 0, timeout=60, what="the worker to consume the routed message")
    insp = app.control.inspect(timeout=5)
    wait_for(lambda: (insp.active_queues() or {}), timeout=30, what="the worker to answer inspect")
    consumed = {q["name"] for qs in insp.active_queues().values() for q in qs}
    assert consumed == set(QUEUES)
