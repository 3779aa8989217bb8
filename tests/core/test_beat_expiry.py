"""Beat's periodic messages expire when the next one is due, so they never pile up while workers
are down (a worker back after an outage would otherwise run every missed tick in a row)."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from celery.schedules import schedule as celery_schedule

from tests.conftest import wait_for


def _period(entry: dict) -> float:
    s = entry["schedule"]
    if isinstance(s, timedelta):
        return s.total_seconds()
    if isinstance(s, celery_schedule):
        return s.run_every.total_seconds()
    return float(s)


def test_every_beat_entry_expires_within_its_period(settings):
    assert settings.CELERY_BEAT_SCHEDULE
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        expires = (entry.get("options") or {}).get("expires")
        assert expires is not None, f"beat entry {name!r} has no expires"
        assert 0 < float(expires) <= _period(entry), (name, expires, _period(entry))


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_a_beat_message_older_than_its_expiry_is_discarded_by_the_worker(start_worker):
    from celery.beat import ScheduleEntry, Scheduler
    from django.conf import settings

    from mediaintel.celery import app

    scheduler = Scheduler(app, lazy=True)
    names = ("release-pending", "reconcile")

    def send_as_beat(name: str) -> str:
        conf = settings.CELERY_BEAT_SCHEDULE[name]
        entry = ScheduleEntry(name=name, app=app, task=conf["task"], schedule=conf["schedule"],
                              options=conf.get("options") or {})
        return scheduler.apply_async(entry, advance=False).id  # exactly what beat publishes

    # workers are down: the messages wait in the queue longer than their period
    stale = {name: send_as_beat(name) for name in names}
    time.sleep(max(_period(settings.CELERY_BEAT_SCHEDULE[n]) for n in names) + 1.0)
    worker = start_worker(role="cpu", concurrency=1, name="beat-expiry")

    def log() -> str:
        return worker.log.read_text(errors="replace")

    for name, task_id in stale.items():
        task = settings.CELERY_BEAT_SCHEDULE[name]["task"]
        wait_for(lambda t=task, i=task_id: f"Discarding revoked task: {t}[{i}]" in log() or f"[{i}] succeeded" in log(),
                 timeout=90, what=f"the worker to receive the stale {name} message")
        assert f"[{task_id}] succeeded" not in log(), f"a stale {name} message ran"

    # a fresh tick still runs
    fresh = send_as_beat("reconcile")
    wait_for(lambda: f"[{fresh}] succeeded" in log(), timeout=60, what="a fresh beat message to run")
