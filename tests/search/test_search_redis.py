"""Search's Redis (query-vector replies and cache) follows the configuration, whatever the broker.

``REDIS_URL`` when set; else the broker when it is Redis (``redis://`` or a Sentinel URL); else
none, and semantic search degrades saying that ``REDIS_URL`` is missing — never a silent
fallback to the embedded stack's Redis on 127.0.0.1, which a deployment does not run.
The "web" side here is a separate process with its own environment (as a web container has),
the worker a real ``python -m workers --role search``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, wait_for, worker_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"
QUERY = "how often does the ferry leave for the island"
EMBED = ("import django, json; django.setup()\n"  # noqa: UP031
         "from django.conf import settings\n"
         "from apps.search import remote\n"
         "try:\n"
         "    v = remote.embed_query(%r, timeout=120)\n"
         "    out = {'ok': True, 'dims': len(v.vector), 'cached': v.cached}\n"
         "except remote.RemoteUnavailable as e:\n"
         "    out = {'ok': False, 'code': e.code, 'error': str(e)}\n"
         "out['redis_url'] = settings.REDIS_URL\n"
         "print(json.dumps(out))\n") % QUERY


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(dead: int, **overrides: str) -> dict[str, str]:
    """A process environment for these tests: the embedded profile's Redis port points at nothing
    (as in a deployment, where no embedded stack runs), so only configured URLs can work."""
    env = worker_env(MEDIAINTEL_TEST_REDIS_PORT=str(dead), **overrides)
    env.pop("REDIS_URL", None)
    env.update(overrides)
    return env


def _web_embed(env: dict[str, str]) -> dict[str, Any]:
    r = subprocess.run([sys.executable, "-c", EMBED], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=240)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def _test_redis_url() -> str:
    from mediaintel import devstack

    return devstack.profile("test").broker_url


@pytest.fixture
def rabbit() -> str:
    from tests.pipeline.test_brokers import _rabbit_available

    if not _rabbit_available():
        pytest.fail("RabbitMQ is not installed/running (make install installs rabbitmq-server)")
    from kombu import Connection

    with Connection(AMQP_URL) as conn, contextlib.suppress(Exception):  # the queue may not exist yet
        conn.channel().queue_purge("search")
    return AMQP_URL


@pytest.fixture
def sentinel(tmp_path: Path) -> Iterator[str]:
    """A real Redis Sentinel watching the test Redis as master ``mediaintel``; yields its URL."""
    port = _dead_port()
    redis_port = int(_test_redis_url().rsplit(":", 1)[1].split("/")[0])
    conf = tmp_path / "sentinel.conf"
    conf.write_text(f"port {port}\nbind 127.0.0.1\ndir {tmp_path}\n"
                    f"sentinel monitor mediaintel 127.0.0.1 {redis_port} 1\n")
    proc = subprocess.Popen(["redis-server", str(conf), "--sentinel"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        import redis

        def master_known() -> bool:
            try:
                return redis.Redis(port=port).execute_command("SENTINEL", "get-master-addr-by-name",
                                                              "mediaintel") is not None
            except redis.ConnectionError:
                return False

        wait_for(master_known, timeout=30, what="the sentinel to know its master")
        yield f"sentinel://127.0.0.1:{port}/0"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)


def test_query_vectors_with_rabbitmq_as_broker_use_the_configured_redis(rabbit, start_worker):
    dead = _dead_port()
    redis_url = _test_redis_url()
    start_worker(role="search", concurrency=1, name="search-amqp",
                 env=_env(dead, BROKER_URL=rabbit, REDIS_URL=redis_url))
    out = _web_embed(_env(dead, BROKER_URL=rabbit, REDIS_URL=redis_url))
    assert out == {"ok": True, "dims": 384, "cached": "", "redis_url": redis_url}


def test_rabbitmq_without_redis_url_degrades_naming_the_setting(rabbit):
    out = _web_embed(_env(_dead_port(), BROKER_URL=rabbit))
    assert out["redis_url"] == ""
    assert not out["ok"] and out["code"] == "redis_not_configured", out
    assert "REDIS_URL" in out["error"], out


def test_query_vectors_through_a_sentinel_broker(sentinel, start_worker):
    dead = _dead_port()
    env = {"BROKER_URL": sentinel, "MEDIAINTEL_REDIS_SENTINEL_MASTER": "mediaintel"}
    start_worker(role="search", concurrency=1, name="search-sentinel", env=_env(dead, **env))
    out = _web_embed(_env(dead, **env))
    assert out == {"ok": True, "dims": 384, "cached": "", "redis_url": sentinel}


def test_manage_check_warns_when_search_has_no_redis():
    def check(**env: str) -> str:
        r = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, capture_output=True, text=True,
                           env=_env(_dead_port(), **env), timeout=120)
        return r.stdout + r.stderr

    assert "search.W001" in check(BROKER_URL=AMQP_URL)
    assert "search.W001" not in check(BROKER_URL=AMQP_URL, REDIS_URL=_test_redis_url())
