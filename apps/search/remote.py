"""Model work for queries, done by a worker: the web process never imports torch.

A query text (or an uploaded image) is sent as a Celery task on the ``search`` queue (no
pipeline stage runs there, so queries never wait behind ingestion), where the same engine that
built the index embeds it; the worker pushes its answer onto a Redis
reply list that the web process waits on with ``BLPOP`` and a short timeout. No Celery result
backend is involved. That Redis is ``settings.REDIS_URL``: the broker when it is Redis, else
configured on its own (with RabbitMQ as the broker search needs it; unset, search degrades and
says so). Query vectors are cached twice: in this process (LRU) and in Redis (the worker writes
the cache entry itself, so a query whose answer came too late is warm next time).

When no worker answers in time the caller gets :class:`RemoteUnavailable` and degrades
(semantic search falls back to full-text search).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from apps.core.redis_client import RedisNotConfigured, client
from mediaintel.env import env_float, env_int

EMBED_QUERY_TASK = "mediaintel.search.embed_query"
ANALYSE_IMAGE_TASK = "mediaintel.search.analyse_image"
QUEUE = "search"
PREFIX = "mediaintel:search:"
REPLY_TTL = 60  # seconds a late reply (or an unread image) stays in Redis
CACHE_TTL = env_int("MEDIAINTEL_SEARCH_CACHE_TTL", 7 * 24 * 3600)


def embed_timeout() -> float:
    """Seconds the web process waits for a query vector before degrading to full-text search."""
    default = env_float("MEDIAINTEL_SEARCH_EMBED_TIMEOUT", 3.0)
    return float(getattr(settings, "MEDIAINTEL_SEARCH_EMBED_TIMEOUT", default))


def image_timeout() -> float:
    """Seconds the web process waits for an uploaded image to be analysed."""
    default = env_float("MEDIAINTEL_SEARCH_IMAGE_TIMEOUT", 15.0)
    return float(getattr(settings, "MEDIAINTEL_SEARCH_IMAGE_TIMEOUT", default))


class RemoteUnavailable(Exception):
    """No worker answered in time, the broker or Redis is unreachable, or the worker failed."""

    def __init__(self, message: str, code: str = "workers_unavailable") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class QueryVector:
    vector: list[float]
    engine_version: str
    cached: str = ""  # "" (computed now), "memory" or "redis"
    ms: float = 0.0  # round trip as the web process saw it


@dataclass(frozen=True)
class ImageAnalysis:
    embedding: list[float]
    embedding_version: str
    pdq_bits: str
    pdq_hex: str
    pdq_quality: int
    tags: list[tuple[str, float]] = field(default_factory=list)
    ms: float = 0.0


class _LRU:
    def __init__(self, size: int) -> None:
        self.size = size
        self._d: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> Any:
        with self._lock:
            if key in self._d:
                self._d.move_to_end(key)
                return self._d[key]
        return None

    def put(self, key: str, value: Any) -> None:
        with self._lock:
            self._d[key] = value
            self._d.move_to_end(key)
            while len(self._d) > self.size:
                self._d.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._d.clear()


_memory = _LRU(env_int("MEDIAINTEL_SEARCH_LRU_SIZE", 1024))
_clients: dict[str, Any] = {}


def _redis(timeout: float) -> Any:
    """A client of ``settings.REDIS_URL`` (plain or Sentinel); :class:`RemoteUnavailable` when unset."""
    url = settings.REDIS_URL
    key = f"{url}|{timeout:.1f}"
    if key not in _clients:
        try:
            _clients[key] = client(url=url, socket_connect_timeout=1.0, socket_timeout=timeout + 2.0)
        except RedisNotConfigured as e:
            raise RemoteUnavailable(str(e), code="redis_not_configured") from None
    return _clients[key]


def normalise(text: str) -> str:
    return " ".join(text.split())


def cache_key(text: str) -> str:
    """Key of a query vector: the text and the text_embed engine version this deployment indexes with."""
    from mediacommon.catalog import spec_for  # stdlib-only table

    version = spec_for("text_embed", settings.MEDIAINTEL_STAGES).version
    digest = hashlib.sha256(f"{version}\x00{normalise(text)}".encode()).hexdigest()
    return f"{PREFIX}qvec:{digest}"


def clear_memory_cache() -> None:
    _memory.clear()


def _call(task: str, kwargs: dict[str, Any], reply_to: str, timeout: float) -> dict[str, Any]:
    from mediaintel.celery import app

    client = _redis(timeout)
    try:
        app.send_task(task, kwargs={**kwargs, "reply_to": reply_to}, queue=QUEUE, routing_key=QUEUE,
                      expires=REPLY_TTL, ignore_result=True, retry=False)
        popped = client.blpop([reply_to], timeout=timeout)
    except Exception as e:  # broker or Redis down: the caller degrades
        raise RemoteUnavailable(f"cannot reach the workers: {type(e).__name__}: {e}") from e
    if popped is None:
        raise RemoteUnavailable(f"no worker answered within {timeout:g}s (queue {QUEUE!r})")
    reply = json.loads(popped[1])
    if not reply.get("ok"):
        raise RemoteUnavailable(f"the worker failed: {reply.get('error', 'unknown error')}",
                                code=reply.get("code", "worker_error"))
    return reply


def embed_query(text: str, timeout: float | None = None) -> QueryVector:
    """The query's vector from the indexing engine (cached); :class:`RemoteUnavailable` on timeout."""
    t0 = time.perf_counter()
    text = normalise(text)
    key = cache_key(text)
    hit = _memory.get(key)
    if hit is not None:
        return QueryVector(hit[0], hit[1], "memory", round((time.perf_counter() - t0) * 1000, 2))
    timeout = embed_timeout() if timeout is None else timeout
    client = _redis(timeout)
    try:
        raw = client.get(key)
    except Exception:  # Redis down: the task call below reports it
        raw = None
    if raw:
        cached = json.loads(raw)
        _memory.put(key, (cached["vector"], cached["engine_version"]))
        return QueryVector(cached["vector"], cached["engine_version"], "redis",
                           round((time.perf_counter() - t0) * 1000, 2))
    reply = _call(EMBED_QUERY_TASK, {"texts": [text], "cache_keys": [key], "cache_ttl": CACHE_TTL},
                  f"{PREFIX}reply:{uuid.uuid4().hex}", timeout)
    vector = reply["vectors"][0]
    _memory.put(key, (vector, reply["engine_version"]))
    return QueryVector(vector, reply["engine_version"], "", round((time.perf_counter() - t0) * 1000, 2))


def analyse_image(data: bytes, timeout: float | None = None) -> ImageAnalysis:
    """EfficientNet embedding + PDQ hash of an uploaded image, computed by a worker."""
    t0 = time.perf_counter()
    timeout = image_timeout() if timeout is None else timeout
    token = uuid.uuid4().hex
    blob_key = f"{PREFIX}image:{token}"
    try:
        _redis(timeout).set(blob_key, data, ex=REPLY_TTL)
    except Exception as e:
        raise RemoteUnavailable(f"cannot reach Redis: {type(e).__name__}: {e}") from e
    reply = _call(ANALYSE_IMAGE_TASK, {"blob_key": blob_key}, f"{PREFIX}reply:{token}", timeout)
    return ImageAnalysis(embedding=reply["embedding"], embedding_version=reply["embedding_version"],
                         pdq_bits=reply["pdq"]["bits"], pdq_hex=reply["pdq"]["hex"],
                         pdq_quality=int(reply["pdq"]["quality"]),
                         tags=[(str(t[0]), float(t[1])) for t in reply.get("tags", [])],
                         ms=round((time.perf_counter() - t0) * 1000, 2))
