"""Domain events from the outbox to real buses: Redis Streams (the stack's Redis) and NATS JetStream
(a real ``nats-server`` with a temporary store). A consumer reads an asset's whole sequence — ingested,
its stages, the decision, ready — in order, with no duplicate by event id, even after a relay that
died between sending and recording it, and with two relays running at once."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import time
import uuid
from typing import Any

import pytest
from django.db import transaction

from apps.events import relay as outbox
from apps.events.models import OutboxEvent
from apps.events.services import publish
from tests.conftest import in_threads, wait_for
from tests.events.flows import drive, ingest_text
from tests.moderation.helpers import make_user
from workers.eventbus.jetstream import JetStreamBus, stream_name
from workers.eventbus.redis_streams import RedisStreamsBus

NATS_PORT = 27463  # this worktree's range (27460-27469)


class Killed(BaseException):
    """The relay process dying right after the bus acknowledged, before its transaction commits."""


class DiesAfterSending:
    def __init__(self, bus: Any) -> None:
        self.bus, self.name = bus, bus.name

    def publish(self, envelopes: list[dict[str, Any]]) -> None:
        self.bus.publish(envelopes)
        raise Killed


def relay_with_crash(bus: Any, batch: int = 4) -> None:
    """One pass dies after sending; then relays run until the outbox is drained."""
    with pytest.raises(Killed):
        outbox.relay_once(DiesAfterSending(bus), batch=batch)
    assert OutboxEvent.objects.filter(relayed_at__isnull=True).count() == OutboxEvent.objects.count()
    while outbox.backlog():
        assert outbox.relay_once(bus, batch=batch).sent


def outbox_sequence(asset_id: Any) -> list[tuple[str, str]]:
    return [(str(e), t) for e, t in OutboxEvent.objects.filter(asset_id=asset_id).order_by("id")
            .values_list("event_id", "type")]


def dedupe(envelopes: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    seen, out = set(), []
    for e in envelopes:
        if e["id"] not in seen:
            seen.add(e["id"])
            out.append(e)
    return out, len(envelopes) - len(out)


@pytest.fixture
def asset(transactional_db, tmp_path):
    """An uploaded text asset through its whole pipeline: one stage retried once, then moderated."""
    a = ingest_text(tmp_path, make_user("up-events", "uploader"), "An ordinary memo about lunch.")
    drive(a.pk, fail_once="language")
    a.refresh_from_db()
    assert a.status == "ready"
    return a


def check_sequence(envelopes: list[dict[str, Any]], asset_id: Any) -> None:
    mine = [e for e in envelopes if e["asset"] == str(asset_id)]
    assert [(e["id"], e["type"]) for e in mine] == outbox_sequence(asset_id)
    types = [e["type"] for e in mine]
    assert types[0] == "asset.ingested" and types[-1] == "asset.ready"
    assert types.index("stage.failed") < types.index("decision.made") < types.index("asset.ready")
    stages = [(e["data"]["stage"], e["type"]) for e in mine if e["type"].startswith("stage.")]
    assert stages[0] == ("text_extract", "stage.completed") and stages[-1] == ("moderate", "stage.completed")
    assert ("language", "stage.failed") in stages
    assert stages.index(("language", "stage.failed")) < stages.index(("language", "stage.completed"))
    assert [e["seq"] for e in mine] == sorted(e["seq"] for e in mine)


# ------------------------------------------------------------------ Redis Streams
@pytest.fixture
def redis_bus(settings):
    bus = RedisStreamsBus(settings.REDIS_URL, f"test.events.{uuid.uuid4().hex[:8]}", maxlen=10_000)
    yield bus
    bus.client.delete(bus.stream)
    bus.close()


def read_group(bus: RedisStreamsBus, group: str = "consumer-a") -> list[dict[str, Any]]:
    c = bus.client
    c.xgroup_create(bus.stream, group, id="0", mkstream=True)
    out: list[dict[str, Any]] = []
    while True:
        got = c.xreadgroup(group, "c1", {bus.stream: ">"}, count=100)
        if not got:
            return out
        for entry_id, fields in got[0][1]:
            env = json.loads(fields[b"event"])
            assert fields[b"id"].decode() == env["id"] and fields[b"type"].decode() == env["type"]
            out.append(env)
            c.xack(bus.stream, group, entry_id)


def test_a_consumer_group_reads_the_assets_events_in_order_without_duplicates_after_a_relay_crash(asset,
                                                                                                redis_bus):
    relay_with_crash(redis_bus)
    raw = read_group(redis_bus)
    events, duplicates = dedupe(raw)
    assert duplicates == 4  # the dead pass's batch was sent again: at least once
    check_sequence(events, asset.pk)
    assert not outbox.backlog()


def test_two_relays_at_once_send_every_event_once_in_order(asset, redis_bus):
    def run() -> None:
        deadline = time.monotonic() + 20
        while outbox.backlog() and time.monotonic() < deadline:
            outbox.relay_once(redis_bus, batch=2)

    in_threads(run, [(), ()])
    events, duplicates = dedupe(read_group(redis_bus))
    assert duplicates == 0
    check_sequence(events, asset.pk)
    assert [e["seq"] for e in events] == list(OutboxEvent.objects.order_by("id").values_list("id", flat=True))


def test_the_stream_is_trimmed_to_about_its_maximum_length(transactional_db, settings):
    bus = RedisStreamsBus(settings.REDIS_URL, f"test.events.{uuid.uuid4().hex[:8]}", maxlen=100)
    try:
        aid = uuid.uuid4()
        for _ in range(5):
            with transaction.atomic():
                for _ in range(100):
                    publish("asset.deleted", {"asset": aid}, asset_id=aid)
            outbox.relay_once(bus)
        assert 100 <= bus.client.xlen(bus.stream) < 500  # approximate trimming: whole nodes
    finally:
        bus.client.delete(bus.stream)
        bus.close()


def test_an_event_of_a_rolled_back_transaction_is_never_relayed(transactional_db, redis_bus):
    aid = uuid.uuid4()
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        publish("asset.deleted", {"asset": aid}, asset_id=aid)
        1 / 0  # noqa: B018
    assert outbox.relay_once(redis_bus).sent == 0
    assert redis_bus.client.xlen(redis_bus.stream) == 0


def test_a_bus_that_is_down_leaves_the_events_in_the_outbox(transactional_db):
    aid = uuid.uuid4()
    with transaction.atomic():
        publish("asset.deleted", {"asset": aid}, asset_id=aid)
    down = RedisStreamsBus("redis://127.0.0.1:27469/0", "test.events.down")  # nothing listens there
    r = outbox.relay_once(down)
    assert (r.sent, bool(r.error)) == (0, True) and outbox.backlog() == 1


# ------------------------------------------------------------------ NATS JetStream
@pytest.fixture(scope="module")
def nats_url(tmp_path_factory):
    exe = shutil.which("nats-server") or "/usr/sbin/nats-server"
    store = tmp_path_factory.mktemp("jetstream")
    proc = subprocess.Popen([exe, "-a", "127.0.0.1", "-p", str(NATS_PORT), "-js", "-sd", str(store)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection(("127.0.0.1", NATS_PORT), timeout=0.5).close()
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail("nats-server did not start")
            time.sleep(0.1)
    yield f"nats://127.0.0.1:{NATS_PORT}"
    proc.terminate()
    proc.wait(10)


async def _pull(url: str, prefix: str) -> list[dict[str, Any]]:
    import nats
    from nats.errors import TimeoutError as NatsTimeout

    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        sub = await js.pull_subscribe(f"{prefix}.>", durable="consumer-a", stream=stream_name(prefix))
        out: list[dict[str, Any]] = []
        while True:
            try:
                msgs = await sub.fetch(50, timeout=1.5)
            except NatsTimeout:
                return out
            for m in msgs:
                env = json.loads(m.data)
                assert m.headers["Nats-Msg-Id"] == env["id"] and m.subject == f"{prefix}.{env['type']}"
                out.append(env)
                await m.ack()
    finally:
        await nc.close()


def test_jetstream_consumer_reads_the_assets_events_in_order_and_the_server_drops_the_replayed_ones(asset,
                                                                                                  nats_url):
    prefix = f"test.events.n{uuid.uuid4().hex[:8]}"
    bus = JetStreamBus(nats_url, prefix)
    try:
        relay_with_crash(bus)
    finally:
        bus.close()
    raw = asyncio.run(_pull(nats_url, prefix))
    events, duplicates = dedupe(raw)
    assert duplicates == 0  # Nats-Msg-Id: the server de-duplicated the dead pass's batch
    check_sequence(events, asset.pk)


def test_jetstream_unreachable_is_a_publish_error_and_nothing_is_marked(transactional_db):
    aid = uuid.uuid4()
    with transaction.atomic():
        publish("asset.deleted", {"asset": aid}, asset_id=aid)
    bus = JetStreamBus("nats://127.0.0.1:27469", "test.events.down", timeout=1.0)
    try:
        r = outbox.relay_once(bus)
    finally:
        bus.close()
    assert r.sent == 0 and "NATS" in r.error and outbox.backlog() == 1


# ------------------------------------------------------------------ the relay task in a real worker
@pytest.mark.slow
def test_the_relay_task_in_a_worker_sends_to_the_configured_bus(start_worker, nats_url):
    from mediaintel.celery import app

    prefix = f"test.events.w{uuid.uuid4().hex[:8]}"
    aid = uuid.uuid4()
    for i in range(12):
        with transaction.atomic():
            publish("asset.deleted", {"asset": aid}, asset_id=aid if i % 2 else uuid.uuid4())
    start_worker(env={"MEDIAINTEL_EVENTS_BUS": "nats", "MEDIAINTEL_EVENTS_NATS_URL": nats_url,
                      "MEDIAINTEL_EVENTS_STREAM": prefix, "MEDIAINTEL_EVENTS_RELAY_BATCH": "5"}, concurrency=2)
    for _ in range(2):  # two passes at once: one holds the lease, the other stands by
        app.send_task("mediaintel.events.relay", queue="maintenance", routing_key="maintenance")
    wait_for(lambda: outbox.backlog() == 0, timeout=90, what="the worker's relay to drain the outbox",
             tick=lambda: app.send_task("mediaintel.events.relay", queue="maintenance", routing_key="maintenance"),
             every=1.0)
    events, duplicates = dedupe(asyncio.run(_pull(nats_url, prefix)))
    assert duplicates == 0
    assert [e["id"] for e in events] == [str(e) for e in OutboxEvent.objects.order_by("id")
                                         .values_list("event_id", flat=True)]


def test_pruning_keeps_unsent_events_unless_no_bus_is_configured(transactional_db, redis_bus):
    from datetime import timedelta

    from django.utils import timezone

    aid = uuid.uuid4()
    with transaction.atomic():
        old_sent, old_unsent, fresh = (publish("asset.deleted", {"asset": aid}, asset_id=aid) for _ in range(3))
    assert outbox.relay_once(redis_bus, batch=1).sent == 1
    OutboxEvent.objects.filter(pk__in=[old_sent.pk, old_unsent.pk]).update(
        occurred_at=timezone.now() - timedelta(days=9), relayed_at=None)
    OutboxEvent.objects.filter(pk=old_sent.pk).update(relayed_at=timezone.now() - timedelta(days=8))
    assert outbox.prune(7 * 86400) == 1  # the old relayed one; unsent events wait for the bus
    assert set(OutboxEvent.objects.values_list("pk", flat=True)) == {old_unsent.pk, fresh.pk}
    assert outbox.prune(7 * 86400, unsent=True) == 1  # MEDIAINTEL_EVENTS_BUS=none
    assert list(OutboxEvent.objects.values_list("pk", flat=True)) == [fresh.pk]
