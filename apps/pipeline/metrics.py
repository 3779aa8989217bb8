"""What the broker knows of each queue: messages waiting and the age of the oldest."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from django.conf import settings

from mediacommon.routing import PRIORITY_STEPS, QUEUES, broker_lists

log = logging.getLogger(__name__)


_redis_clients: dict[str, Any] = {}


def _redis() -> Any:
    url = settings.BROKER_URL
    if url not in _redis_clients:
        import redis

        _redis_clients[url] = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    return _redis_clients[url]


def queue_depths() -> dict[str, int]:
    """Messages waiting in each queue; -1 when the broker is unreachable.

    Redis: one pipelined LLEN per queue and priority list over a reused connection (well under a
    millisecond). AMQP: a passive declare per queue through kombu.
    """
    if settings.BROKER_URL.startswith(("redis://", "rediss://")):
        try:
            pipe = _redis().pipeline(transaction=False)
            for q in QUEUES:
                for name in broker_lists(q):
                    pipe.llen(name)
            counts = pipe.execute()
        except Exception as e:
            log.warning("broker unreachable for queue depths: %s", e)
            return {q: -1 for q in QUEUES}
        n = len(PRIORITY_STEPS)
        return {q: sum(counts[i * n:(i + 1) * n]) for i, q in enumerate(QUEUES)}
    return _amqp_depths()


def _amqp_depths() -> dict[str, int]:
    from kombu import Connection

    out: dict[str, int] = {}
    try:
        with Connection(settings.BROKER_URL, connect_timeout=2) as conn:
            ch = conn.default_channel
            for q in QUEUES:
                try:
                    out[q] = ch.queue_declare(queue=q, passive=True).message_count
                except Exception:  # not declared yet: empty (the failed declare closed the channel)
                    out[q] = 0
                    ch = conn.channel()
    except Exception as e:
        log.warning("broker unreachable for queue depths: %s", e)
        return {q: -1 for q in QUEUES}
    return out


#: The message header (epoch seconds) :func:`apps.pipeline.services.send` stamps on every stage message.
SENT_AT_HEADER = "mediaintel_sent_at"


def oldest_message_ages(now: float | None = None) -> dict[str, float]:
    """Seconds since the oldest waiting message of each queue was published (0 when empty).

    Redis: kombu pushes on the left and pops on the right, so the oldest message of each list is
    ``LINDEX -1``: one pipelined call per queue and priority list, like :func:`queue_depths`; the
    age is read from the message's ``mediaintel_sent_at`` header (a message without it counts as
    0). AMQP has no way to look at a message without taking it: no ages there ({}); the
    database's oldest queued stage (``mediaintel_queue_oldest_stage_age_seconds``) stands in.
    """
    if not settings.BROKER_URL.startswith(("redis://", "rediss://")):
        return {}
    now = time.time() if now is None else now
    try:
        pipe = _redis().pipeline(transaction=False)
        for q in QUEUES:
            for name in broker_lists(q):
                pipe.lindex(name, -1)
        tails = pipe.execute()
    except Exception as e:
        log.warning("broker unreachable for queue ages: %s", e)
        return {}
    n = len(PRIORITY_STEPS)
    out: dict[str, float] = {}
    for i, q in enumerate(QUEUES):
        sent = [t for t in (_sent_at(raw) for raw in tails[i * n:(i + 1) * n] if raw) if t]
        out[q] = max(now - min(sent), 0.0) if sent else 0.0
    return out


def _sent_at(raw: bytes) -> float | None:
    try:
        return float(json.loads(raw)["headers"][SENT_AT_HEADER])
    except (ValueError, KeyError, TypeError):
        return None
