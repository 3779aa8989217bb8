"""Exactly one beat sends the schedule: real ``celery -A mediaintel beat`` processes share a lock in Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, wait_for, worker_env

SENT = "Sending due task"
LOCK_KEY = "mediaintel:beat:lock"


class Beat:
    """A real beat process with its own schedule file and log."""

    def __init__(self, tmp: Path, name: str, ttl: float) -> None:
        self.log = tmp / f"beat-{name}.log"
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "mediaintel", "beat", "-l", "INFO",
             "-s", str(tmp / f"schedule-{name}")],
            cwd=ROOT, env=worker_env(MEDIAINTEL_BEAT_LOCK_TTL=str(ttl)), stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True)
        out.close()

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def sent(self) -> int:
        return self.text().count(SENT)

    def signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


@pytest.fixture
def redis_client():
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete(LOCK_KEY)
    yield client
    client.delete(LOCK_KEY)


@pytest.fixture
def beats(tmp_path, redis_client):
    started: list[Beat] = []

    def start(name: str, ttl: float) -> Beat:
        b = Beat(tmp_path, name, ttl)
        started.append(b)
        return b

    yield start
    for b in started:
        b.signal(signal.SIGKILL)


def test_two_beats_only_one_sends_and_the_other_takes_over_when_it_dies(beats):
    a, b = beats("a", ttl=4), beats("b", ttl=4)
    wait_for(lambda: a.sent() + b.sent() >= 1, timeout=30, what="a beat to send its first task")
    time.sleep(8)  # two lock lifetimes: the schedule has 2 s entries, so a second beat would have sent
    holder, standby = (a, b) if a.sent() else (b, a)
    assert holder.sent() >= 3, holder.text()
    assert standby.sent() == 0, standby.text()
    assert "standing by" in standby.text()

    holder.signal(signal.SIGKILL)  # no chance to release: the standby waits for the lock to expire
    wait_for(lambda: standby.sent() >= 1, timeout=20, what="the standby beat to take over")


def test_a_beat_that_loses_its_lock_stops_sending(beats, redis_client):
    a = beats("a", ttl=4)
    wait_for(lambda: a.sent() >= 2, timeout=30, what="the beat to send")
    redis_client.set(LOCK_KEY, "another-beat", px=60_000)  # e.g. its lease ran out during a partition
    wait_for(lambda: "lost" in a.text(), timeout=10, what="the beat to notice it lost the lock")
    time.sleep(0.5)
    stopped_at = a.sent()
    time.sleep(5)
    assert a.sent() == stopped_at, a.text()

    redis_client.delete(LOCK_KEY)
    wait_for(lambda: a.sent() > stopped_at, timeout=15, what="the beat to take the free lock again")


def test_stopping_the_lock_holder_hands_over_at_once(beats, redis_client):
    a = beats("a", ttl=120)
    wait_for(lambda: a.sent() >= 1, timeout=30, what="the first beat to send")
    b = beats("b", ttl=120)
    wait_for(lambda: "standing by" in b.text(), timeout=30, what="the second beat to stand by")
    assert b.sent() == 0
    a_token = redis_client.get(LOCK_KEY)
    assert a_token
    t0 = time.monotonic()
    a.signal(signal.SIGTERM)  # warm stop releases the lock: no waiting for its 120 s lifetime
    assert "beat lock released" in a.text()
    assert redis_client.get(LOCK_KEY) != a_token  # gone, or already the second beat's
    wait_for(lambda: b.sent() >= 1, timeout=30, what="the second beat to take over")
    assert time.monotonic() - t0 < 30  # far less than the lock's lifetime
