"""Redis Streams: every event is one entry (``XADD``) of one stream; consumers use groups.

Entry fields: ``id`` (the event id, for de-duplication), ``type``, ``asset``, ``seq`` and
``event`` (the JSON envelope). One stream keeps the relay's order for every asset. Trimming:
``MAXLEN ~ maxlen`` on every add (approximate, so Redis trims whole nodes cheaply): a consumer
group that falls further behind than ``maxlen`` entries loses the oldest — size it for the
longest consumer outage you accept (the outbox keeps events for its retention period; a
lagging consumer can be re-fed from there by an operator).
"""

from __future__ import annotations

from typing import Any

import redis

from apps.events.relay import PublishError
from workers.eventbus import encode


class RedisStreamsBus:
    name = "redis"

    def __init__(self, url: str, stream: str, *, maxlen: int = 1_000_000) -> None:
        self.client = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
        self.stream, self.maxlen = stream, maxlen

    def publish(self, envelopes: list[dict[str, Any]]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for e in envelopes:
            pipe.xadd(self.stream, {"id": e["id"], "type": e["type"], "asset": e["asset"] or "", "seq": e["seq"],
                                    "event": encode(e)}, maxlen=self.maxlen or None, approximate=True)
        try:
            replies = pipe.execute(raise_on_error=False)
        except redis.RedisError as e:  # nothing known to be acknowledged: all are sent again
            raise PublishError(f"Redis: {e}", sent=0) from e
        for i, reply in enumerate(replies):
            if isinstance(reply, Exception):
                raise PublishError(f"Redis refused an entry: {reply}", sent=i)

    def close(self) -> None:
        self.client.close()
