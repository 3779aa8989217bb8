"""Session fixtures: the real embedded stack (PostgreSQL+pgvector, Redis) and real Celery workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mediaintel import devstack

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", autouse=True)
def stack() -> dict[str, str]:
    """Start the test profile's PostgreSQL and Redis (idempotent; external URLs are respected)."""
    return devstack.up(devstack.profile("test"))


@pytest.fixture(scope="session")
def django_db_modify_db_settings() -> None:
    """Keep pytest-django's default test database name (test_<name>)."""


def _redis_flush(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


@pytest.fixture
def empty_broker() -> None:
    """No message left by an earlier test waits in a queue (readiness would warn: no consumer)."""
    from django.conf import settings

    _redis_flush(settings.BROKER_URL)


class WorkerProcess:
    """A real ``python -m workers`` subprocess against the test database."""

    def __init__(self, env: dict[str, str], role: str = "all", concurrency: int = 2, name: str = "w1",
                 extra: list[str] | None = None) -> None:
        self.env, self.role, self.concurrency, self.name = env, role, concurrency, name
        self.extra = extra or []
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = ROOT / "var" / "test" / f"worker-{name}.log"

    def start(self) -> WorkerProcess:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "workers", "--role", self.role, "-c", str(self.concurrency),
             "--name", f"{self.name}@%h", *self.extra],
            cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


def worker_env(**overrides: str) -> dict[str, str]:
    from django.conf import settings

    db = settings.DATABASES["default"]
    url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "mediaintel.settings_test", "DATABASE_URL": url,
           "BROKER_URL": settings.BROKER_URL,
           "MEDIAINTEL_FAULT_INJECTION": "1", "MEDIAINTEL_STAGE_LEASE": str(settings.MEDIAINTEL_STAGE_LEASE),
           "PYTHONUNBUFFERED": "1"}
    location = settings.STORAGES["default"].get("OPTIONS", {}).get("location")
    if location:  # local storage (an S3 test passes the S3 settings in ``overrides``)
        env["MEDIAINTEL_MEDIA_ROOT"] = str(location)
    env.update(overrides)
    return env


@pytest.fixture
def start_worker(transactional_db: Any) -> Iterator[Callable[..., WorkerProcess]]:
    """Start real worker processes for one test (stopped afterwards)."""
    from django.conf import settings

    _redis_flush(settings.BROKER_URL) if settings.BROKER_URL.startswith("redis") else None
    started: list[WorkerProcess] = []

    def start(**kw: Any) -> WorkerProcess:
        env = worker_env(**kw.pop("env", {}))
        w = WorkerProcess(env, **kw).start()
        started.append(w)
        return w

    yield start
    for w in started:
        w.stop()


@pytest.fixture
def beat(start_worker: Callable[..., WorkerProcess]) -> Callable[[], None]:
    """Run the periodic maintenance (reconcile + release) in-process, as beat would."""
    from apps.pipeline.reconcile import reconcile
    from apps.pipeline.services import release_pending

    def tick() -> None:
        reconcile()
        release_pending()

    return tick


def wait_for(predicate: Callable[[], Any], timeout: float = 60.0, every: float = 0.25,
             tick: Callable[[], None] | None = None, what: str = "condition") -> Any:
    """Poll until ``predicate()`` is truthy; fail the test with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if tick:
            tick()
        time.sleep(every)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")


def in_threads(target: Callable[..., None], args: list[tuple[Any, ...]], timeout: float = 30.0) -> None:
    """Run ``target(*a)`` for every ``a`` at once, each in its own thread with its own database
    connection (closed when it ends), and wait for them all."""
    from django.db import connection

    def run(*a: Any) -> None:
        try:
            target(*a)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=a) for a in args]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)


@pytest.fixture
def isolated_storage(tmp_path: Path, settings: Any) -> Path:
    """A fresh local blob store for one test (workers started afterwards share it)."""
    root = tmp_path / "blob-store"
    root.mkdir()
    settings.MEDIA_ROOT = root
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "apps.assets.storage.DurableFileSystemStorage", "OPTIONS": {"location": str(root)}}}
    return root
