"""Apache Kafka (librdkafka through ``confluent-kafka``): one topic, keyed by asset.

The key is the asset id (the event type for events of no asset), so all events of an asset land
in one partition, where Kafka keeps their order; the producer is idempotent (``enable.idempotence``:
retries neither duplicate nor reorder within a partition) and waits for all in-sync replicas.
Headers: ``event-id``, ``event-type``. ``MEDIAINTEL_EVENTS_KAFKA_CONFIG`` (JSON) adds client
settings (SASL, TLS). A batch is flushed before the relay marks it; the acknowledged prefix is
the events before the first that failed.
"""

from __future__ import annotations

from typing import Any

from apps.events.relay import PublishError
from workers.eventbus import encode


class KafkaBus:
    name = "kafka"

    def __init__(self, bootstrap: str, topic: str, *, extra: dict[str, Any] | None = None,
                 timeout: float = 30.0) -> None:
        from confluent_kafka import Producer

        conf = {"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
                "message.timeout.ms": int(timeout * 1000), "linger.ms": 5, **(extra or {})}
        self.producer = Producer(conf)
        self.topic, self.timeout = topic, timeout

    def publish(self, envelopes: list[dict[str, Any]]) -> None:
        outcome: list[Any] = [None] * len(envelopes)

        def report(i: int) -> Any:
            def cb(err: Any, msg: Any) -> None:
                outcome[i] = err if err is not None else (msg.partition(), msg.offset())
            return cb

        try:
            for i, e in enumerate(envelopes):
                self.producer.produce(self.topic, key=(e["asset"] or e["type"]).encode(), value=encode(e),
                                      headers=[("event-id", e["id"].encode()), ("event-type", e["type"].encode())],
                                      on_delivery=report(i))
                self.producer.poll(0)
        except BufferError as err:
            self.producer.flush(self.timeout)
            raise PublishError(f"Kafka: local queue full: {err}", sent=_prefix(outcome)) from err
        left = self.producer.flush(self.timeout)
        sent = _prefix(outcome)
        if sent < len(envelopes):
            first = next((o for o in outcome if not isinstance(o, tuple)), None)
            raise PublishError(f"Kafka: {first or f'{left} message(s) unacknowledged'}", sent=sent)
        self.acknowledged = outcome  # (partition, offset) per event of the last batch

    def close(self) -> None:
        self.producer.flush(self.timeout)


def _prefix(outcome: list[Any]) -> int:
    n = 0
    for o in outcome:
        if not isinstance(o, tuple):
            break
        n += 1
    return n
