"""Queue ``embed``: model work for interactive search (see apps/search/remote.py).

Each task answers on a Redis reply list named by the caller (``RPUSH`` + expiry) instead of a
Celery result backend, and is not acknowledged late: a query whose worker died is simply
retried by the user, never redelivered minutes later.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from typing import Any

from django.conf import settings

from mediaintel.celery import app
from workers.telemetry import engine_call

log = logging.getLogger("mediaintel.search")

REPLY_TTL = 60


def _redis() -> Any:
    from apps.core.redis_client import client

    return client(socket_connect_timeout=2.0, socket_timeout=10.0)  # settings.REDIS_URL, plain or Sentinel


def _reply(reply_to: str, body: dict[str, Any]) -> None:
    client = _redis()
    pipe = client.pipeline()
    pipe.rpush(reply_to, json.dumps(body))
    pipe.expire(reply_to, REPLY_TTL)
    pipe.execute()


@app.task(name="mediaintel.search.embed_query", ignore_result=True, acks_late=False, soft_time_limit=60,
          time_limit=90)
def embed_query(texts: list[str], reply_to: str, cache_keys: list[str] | None = None,
                cache_ttl: int = 7 * 24 * 3600) -> None:
    """Embed query texts with the engine the ``text_embed`` stage indexes with; reply and cache."""
    from mediacommon.catalog import spec_for
    from workers.stage_engines import text_embedder

    t0 = time.perf_counter()
    try:
        embedder = text_embedder(query=True)
        with engine_call("text_embed.query", len(texts)):
            vectors = embedder.embed(list(texts))
    except Exception as e:
        log.exception("query embedding failed")
        _reply(reply_to, {"ok": False, "error": f"{type(e).__name__}: {e}"})
        return
    version = spec_for("text_embed", settings.MEDIAINTEL_STAGES).version
    rows = [[round(float(x), 7) for x in v] for v in vectors]
    body = {"ok": True, "vectors": rows, "engine_version": version,
            "worker_ms": round((time.perf_counter() - t0) * 1000, 2)}
    _reply(reply_to, body)
    if cache_keys:
        pipe = _redis().pipeline()
        for key, vec in zip(cache_keys, rows, strict=False):
            pipe.set(key, json.dumps({"vector": vec, "engine_version": version}), ex=cache_ttl)
        pipe.execute()


@app.task(name="mediaintel.search.analyse_image", ignore_result=True, acks_late=False, soft_time_limit=60,
          time_limit=90)
def analyse_image(blob_key: str, reply_to: str) -> None:
    """EfficientNet embedding, tags and PDQ hash of a query image parked in Redis under ``blob_key``."""
    from mediacommon.catalog import spec_for
    from workers.engines.decode import load_image
    from workers.engines.phash import compute
    from workers.stage_engines import image_embedder

    t0 = time.perf_counter()
    client = _redis()
    data = client.get(blob_key)
    client.delete(blob_key)
    if data is None:
        _reply(reply_to, {"ok": False, "error": "the query image expired before a worker took it"})
        return
    fd, path = tempfile.mkstemp(prefix="query-", suffix=".img")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        image = load_image(path, max_pixels=settings.MEDIAINTEL_LIMITS["max_pixels"])
        embedder = image_embedder()
        with engine_call("image_embed.query"):
            analysis = embedder.analyze([image])[0]
        h = compute(image)
    except Exception as e:
        from workers.engines.base import PermanentEngineError

        log.warning("query image analysis failed: %s", e)
        code = "invalid_image" if isinstance(e, PermanentEngineError) else "worker_error"
        _reply(reply_to, {"ok": False, "code": code, "error": f"{type(e).__name__}: {e}"})
        return
    finally:
        os.unlink(path)
    _reply(reply_to, {
        "ok": True, "embedding": [round(float(x), 6) for x in analysis.embedding],
        "embedding_version": spec_for("tags", settings.MEDIAINTEL_STAGES).version, "tags": analysis.tags,
        "pdq": {"bits": h.bits, "hex": h.hex, "quality": h.quality},
        "worker_ms": round((time.perf_counter() - t0) * 1000, 2)})
