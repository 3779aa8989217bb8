"""Event bus adapters: where the relay (:mod:`apps.events.relay`) sends domain events.

``MEDIAINTEL_EVENTS_BUS`` picks one: ``redis`` (Redis Streams, the default: no new service),
``nats`` (NATS JetStream), ``kafka`` (Apache Kafka through librdkafka), or ``none`` (events stay
in the outbox and are pruned unsent). Each adapter publishes a batch in order and raises
:class:`apps.events.relay.PublishError` with the acknowledged prefix when it cannot finish.
"""

from __future__ import annotations

from typing import Any

from apps.events.relay import Bus, PublishError

__all__ = ["Bus", "PublishError", "encode", "from_settings"]


def encode(envelope: dict[str, Any]) -> bytes:
    import json

    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode()


def from_settings() -> Bus | None:
    from django.conf import settings

    kind = settings.MEDIAINTEL_EVENTS_BUS
    if kind == "redis":
        from workers.eventbus.redis_streams import RedisStreamsBus

        return RedisStreamsBus(settings.MEDIAINTEL_EVENTS_REDIS_URL, settings.MEDIAINTEL_EVENTS_STREAM,
                               maxlen=settings.MEDIAINTEL_EVENTS_REDIS_MAXLEN)
    if kind == "nats":
        from workers.eventbus.jetstream import JetStreamBus

        return JetStreamBus(settings.MEDIAINTEL_EVENTS_NATS_URL, settings.MEDIAINTEL_EVENTS_STREAM,
                            max_age=settings.MEDIAINTEL_EVENTS_NATS_MAX_AGE)
    if kind == "kafka":
        from workers.eventbus.kafka import KafkaBus

        return KafkaBus(settings.MEDIAINTEL_EVENTS_KAFKA_BOOTSTRAP, settings.MEDIAINTEL_EVENTS_STREAM,
                        extra=settings.MEDIAINTEL_EVENTS_KAFKA_CONFIG)
    return None
