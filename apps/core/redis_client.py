"""Redis clients for ``settings.REDIS_URL``: a plain URL or, through Sentinel, kombu's form.

Accepted: ``redis://``, ``rediss://``, ``unix://`` (redis-py's ``from_url``) and
``sentinel://[:password@]host:port[/db][;sentinel://host:port…]`` — the form Celery's broker
takes — whose master, named by ``settings.REDIS_SENTINEL_MASTER``, is looked up on every
(re)connection, so a failover is followed. An empty ``REDIS_URL`` (the broker is not Redis and
none was configured) raises :class:`RedisNotConfigured`: there is no silent fallback to a Redis
on 127.0.0.1.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

from django.conf import settings


class RedisNotConfigured(RuntimeError):
    """``REDIS_URL`` is empty: the broker is not Redis and no Redis was configured."""


def client(*, socket_timeout: float, socket_connect_timeout: float, url: str | None = None) -> Any:
    """A new Redis client for ``url`` (default ``settings.REDIS_URL``); callers cache it."""
    import redis

    url = settings.REDIS_URL if url is None else url
    if not url:
        raise RedisNotConfigured(
            f"REDIS_URL is not set and the broker ({urlsplit(settings.BROKER_URL).scheme}://) is not Redis; "
            "set REDIS_URL to a Redis for search's query vectors")
    if not url.startswith("sentinel://"):
        return redis.Redis.from_url(url, socket_timeout=socket_timeout, socket_connect_timeout=socket_connect_timeout)
    from redis.sentinel import Sentinel

    hosts, password, username, db = [], None, None, 0
    for part in url.split(";"):
        u = urlsplit(part.strip())
        hosts.append((u.hostname or "127.0.0.1", u.port or 26379))
        if u.password and password is None:
            password, username = unquote(u.password), unquote(u.username) if u.username else None
        if u.path.strip("/").isdigit():
            db = int(u.path.strip("/"))
    sentinel = Sentinel(hosts, socket_timeout=socket_connect_timeout, socket_connect_timeout=socket_connect_timeout)
    return sentinel.master_for(settings.REDIS_SENTINEL_MASTER, socket_timeout=socket_timeout,
                               socket_connect_timeout=socket_connect_timeout, db=db, password=password,
                               username=username)
