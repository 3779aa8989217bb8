"""NATS JetStream: subject ``<stream>.<type>`` (``mediaintel.events.asset.ready``), one stream.

The stream (name: the subject prefix in upper case with ``_`` for ``.``) captures
``<stream>.>`` and is created on first use with file storage, ``max_age`` retention and a
two-minute duplicate window. Each message carries ``Nats-Msg-Id: <event id>``, so a relay that
re-sends after a crash is de-duplicated by the server within the window; each publish waits for
its acknowledgement before the next, so the stream keeps the relay's order.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from apps.events.relay import PublishError
from workers.eventbus import encode

log = logging.getLogger(__name__)


async def _log_error(e: Exception) -> None:
    log.warning("NATS: %s: %s", type(e).__name__, e)


def stream_name(prefix: str) -> str:
    return prefix.upper().replace(".", "_").replace(":", "_")


class JetStreamBus:
    name = "nats"

    def __init__(self, url: str, prefix: str, *, max_age: float = 7 * 86400, timeout: float = 10.0) -> None:
        self.url, self.prefix, self.max_age, self.timeout = url, prefix, max_age, timeout
        self.stream = stream_name(prefix)
        self.loop = asyncio.new_event_loop()
        self.nc: Any = None
        self.js: Any = None

    async def _connect(self) -> None:
        import nats
        from nats.js.api import StreamConfig
        from nats.js.errors import NotFoundError

        if self.nc is not None and self.nc.is_connected:
            return
        self.nc = await nats.connect(self.url, connect_timeout=self.timeout, max_reconnect_attempts=2,
                                     allow_reconnect=True, error_cb=_log_error)
        self.js = self.nc.jetstream(timeout=self.timeout)
        try:
            await self.js.stream_info(self.stream)
        except NotFoundError:
            await self.js.add_stream(StreamConfig(name=self.stream, subjects=[f"{self.prefix}.>"],
                                                  max_age=self.max_age, duplicate_window=120.0))

    async def _publish(self, envelopes: list[dict[str, Any]]) -> int:
        await self._connect()
        for i, e in enumerate(envelopes):
            try:
                await self.js.publish(f"{self.prefix}.{e['type']}", encode(e), headers={"Nats-Msg-Id": e["id"]})
            except Exception as err:
                raise PublishError(f"NATS: {type(err).__name__}: {err}", sent=i) from err
        return len(envelopes)

    def publish(self, envelopes: list[dict[str, Any]]) -> None:
        try:
            self.loop.run_until_complete(self._publish(envelopes))
        except PublishError:
            raise
        except Exception as err:  # could not connect or create the stream
            raise PublishError(f"NATS: {type(err).__name__}: {err}", sent=0) from err

    def close(self) -> None:
        if self.nc is not None:
            self.loop.run_until_complete(self.nc.close())
            self.nc = None
        self.loop.close()
