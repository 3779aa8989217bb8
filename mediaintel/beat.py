"""One beat at a time: the beat scheduler sends the schedule only while it holds a lease in Redis.

``CELERY_BEAT_SCHEDULER`` points every ``celery -A mediaintel beat`` (``make run``, Compose,
Kubernetes) at :class:`LockedScheduler`, so a second beat — a rolling update, a pod rescheduled
while the old one still runs on a partitioned node, a human starting one by hand — stands by
instead of doubling every periodic task.

Invariants:

- The lease is one Redis key (``mediaintel:beat:lock``) holding the holder's token, with a
  time to live of ``MEDIAINTEL_BEAT_LOCK_TTL`` seconds. Taking and renewing is one Lua script
  (set if absent, extend if ours, else refuse); releasing deletes the key only if it is ours.
- A beat sends due tasks only while its lease is *valid by its own clock*: until 80 % of the
  TTL after the start of its last successful renewal. Redis expires the key no earlier than a
  full TTL after that renewal, so the old holder has stopped sending before anyone else can
  take the lease, even when it cannot reach Redis at all (a partition).
- The holder renews every quarter TTL; a standby tries every second (at most a quarter TTL), so
  it takes over about one TTL after the holder died, and within a second when the holder stops
  cleanly (its SIGTERM handling releases the lease).
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from typing import Any

from celery.beat import PersistentScheduler

log = logging.getLogger("celery.beat")

LOCK_KEY = "mediaintel:beat:lock"

# KEYS[1] the lock; ARGV[1] our token, ARGV[2] ttl in ms. 1 if we hold it now, else 0.
_TAKE_OR_RENEW = """
local holder = redis.call('GET', KEYS[1])
if holder == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
elseif holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
VALID_FRACTION = 0.8


class RedisLease:
    """A lease on ``key`` in Redis, valid for this process until :attr:`valid_until` (monotonic)."""

    def __init__(self, url: str, key: str, ttl: float, token: str | None = None) -> None:
        import redis

        self.client = redis.Redis.from_url(url, socket_timeout=max(1.0, ttl / 8), socket_connect_timeout=2)
        self.key, self.ttl = key, ttl
        self.token = token or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.valid_until = 0.0
        self._take = self.client.register_script(_TAKE_OR_RENEW)
        self._release = self.client.register_script(_RELEASE)

    def valid(self) -> bool:
        return time.monotonic() < self.valid_until

    def refresh(self) -> bool:
        """Take or renew the lease; True when held. A Redis error keeps what is still valid."""
        import redis

        started = time.monotonic()
        try:
            held = bool(self._take(keys=[self.key], args=[self.token, int(self.ttl * 1000)]))
        except redis.RedisError as e:
            log.warning("beat lock: Redis error (%s); sending only while the current lease lasts", e)
            return self.valid()
        self.valid_until = started + self.ttl * VALID_FRACTION if held else 0.0
        return held

    def holder(self) -> str:
        try:
            value = self.client.get(self.key)
        except Exception:
            return "unknown"
        return value.decode(errors="replace") if value else "nobody"

    def release(self) -> None:
        self.valid_until = 0.0
        try:
            self._release(keys=[self.key], args=[self.token])
        except Exception as e:  # expiry frees it anyway
            log.warning("beat lock: could not release (%s); it expires in %.0fs", e, self.ttl)


class LockedScheduler(PersistentScheduler):
    """``PersistentScheduler`` that ticks only while it holds the beat lease (see the module doc)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from django.conf import settings

        ttl = float(settings.MEDIAINTEL_BEAT_LOCK_TTL)
        self.lease = RedisLease(settings.REDIS_URL, LOCK_KEY, ttl)
        self.renew_every = ttl / 4
        self.standby_every = min(1.0, self.renew_every)
        self._next_refresh = 0.0
        self._state = "starting"
        super().__init__(*args, **kwargs)

    def _refresh(self) -> None:
        held = self.lease.refresh()
        self._next_refresh = time.monotonic() + (self.renew_every if held else self.standby_every)
        state = "holding" if held else "standby"
        if state == self._state:
            return
        if held:
            log.info("beat lock %s acquired by %s (ttl %.0fs): sending the schedule",
                     LOCK_KEY, self.lease.token, self.lease.ttl)
        elif self._state == "holding":
            log.warning("beat lock lost to %s: no longer sending", self.lease.holder())
        else:
            log.info("beat lock held by %s: standing by", self.lease.holder())
        self._state = state

    def tick(self, *args: Any, **kwargs: Any) -> float:
        if time.monotonic() >= self._next_refresh:
            self._refresh()
        if not self.lease.valid():
            if self._state == "holding":  # renewals failed until the lease ran out
                log.warning("beat lock lease ran out: no longer sending")
                self._state = "standby"
            return max(0.1, self._next_refresh - time.monotonic())
        interval = super().tick(*args, **kwargs)
        return max(0.1, min(interval, self._next_refresh - time.monotonic()))

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self._state == "holding":
                self.lease.release()
                log.info("beat lock released")
