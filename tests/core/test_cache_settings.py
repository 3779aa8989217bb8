"""The shared cache (throttle and sign-in counters) follows the Redis that is configured, and works
without any Redis at all (a RabbitMQ broker with no REDIS_URL): real settings in a real process."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT

PROBE = ("import django; django.setup(); from django.conf import settings; from django.core.cache import cache; "
         "cache.set('probe', 41); print(settings.CACHES['default']['BACKEND'], cache.incr('probe'))")


def _run(**env: str) -> str:
    base = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "MEDIAINTEL_CACHE_URL", "BROKER_URL")}
    r = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=120,
                       env={**base, "DJANGO_SETTINGS_MODULE": "mediaintel.settings_test", **env})
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout.strip()


def test_without_any_redis_the_cache_is_per_process_memory():
    out = _run(BROKER_URL="amqp://guest:guest@127.0.0.1:5672//")
    assert out == "django.core.cache.backends.locmem.LocMemCache 42"


def test_with_a_redis_broker_the_cache_is_shared_in_redis():
    from django.conf import settings

    out = _run(BROKER_URL=settings.BROKER_URL)
    assert out == "django.core.cache.backends.redis.RedisCache 42"
