"""Event schemas are published and every event the product emits validates against its own; the Kafka
adapter's contract, against librdkafka's built-in mock cluster (no Kafka broker can run here: Debian
and PyPI ship none), so the real client library does the producing, partitioning and acknowledging."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.db import transaction
from jsonschema import Draft202012Validator, FormatChecker

from apps.assets.actions import delete_asset
from apps.audit.services import Actor
from apps.events import relay as outbox
from apps.events.models import OutboxEvent
from apps.events.services import publish
from apps.moderation import actions, banks, services
from apps.moderation.models import HashBank, ReviewItem
from mediacommon import events as catalog
from tests.events.flows import drive, ingest_text
from tests.moderation.helpers import flag, make_asset, make_user, phash, random_bits
from workers.eventbus import PublishError
from workers.eventbus.kafka import KafkaBus

DOCS = Path(__file__).resolve().parents[2] / "docs" / "events"


def published(event_type: str) -> dict[str, Any]:
    return json.loads((DOCS / "schemas" / catalog.schema_file(event_type)).read_text())


def test_the_published_schemas_and_asyncapi_document_are_what_the_catalogue_says(tmp_path):
    catalog.write(tmp_path)
    for p in sorted((tmp_path / "schemas").iterdir()):
        assert (DOCS / "schemas" / p.name).read_text() == p.read_text(), f"run: python -m mediacommon.events {DOCS}"
        Draft202012Validator.check_schema(json.loads(p.read_text()))
    assert (DOCS / "asyncapi.json").read_text() == (tmp_path / "asyncapi.json").read_text()
    assert {p.name for p in (DOCS / "schemas").iterdir()} == {catalog.schema_file(t) for t in catalog.EVENTS}


def test_an_unknown_event_type_is_refused(transactional_db):
    with pytest.raises(catalog.UnknownEvent, match=r"asset\.exploded"), transaction.atomic():
        publish("asset.exploded", {})
    assert not OutboxEvent.objects.exists()


def test_every_event_the_product_emits_validates_against_its_published_schema(transactional_db, tmp_path):
    up, mod, mod2 = make_user("up-s", "uploader"), make_user("mod-s", "moderator"), make_user("mod-s2", "moderator")
    ok = ingest_text(tmp_path, up, "A note about the weather.")
    drive(ok.pk, fail_once="language", skip="text_embed")
    broken = ingest_text(tmp_path, up, "Another note.")
    drive(broken.pk, kill="text_extract")
    broken_id = broken.pk
    delete_asset(broken, actor=Actor.system("test"))
    # review → human decision → appeal → overturned
    flagged = make_asset(up, title="threat")
    flag(flagged, "threat", 0.9)
    services.moderate_asset(flagged)
    item = ReviewItem.objects.get(asset=flagged)
    actions.claim_review(item.pk, mod)
    decision = actions.decide_review(item.pk, mod, "reject", reason_codes=["harassment/threat"])
    appeal = actions.open_appeal(decision, up, "it is a quote from a film")
    actions.decide_appeal(appeal.pk, mod2, upheld=False, note="a quotation")
    # a hash-bank match
    bits = random_bits(7)
    bank = HashBank.objects.create(name="known", threshold=20)
    actions.add_bank_entry(bank, banks.bits_to_hex(bits), scan=False)
    matched = make_asset(up, kind="image", title="copy")
    phash(matched, bits)
    services.moderate_asset(matched)

    seen: set[str] = set()
    for ev in OutboxEvent.objects.order_by("id"):
        env = ev.envelope()
        errors = [e.message for e in Draft202012Validator(published(ev.type), format_checker=FormatChecker())
                  .iter_errors(env)]
        assert not errors, (ev.type, errors, env)
        seen.add(ev.type)
    assert seen == set(catalog.EVENTS), f"never emitted: {sorted(set(catalog.EVENTS) - seen)}"
    types = list(OutboxEvent.objects.filter(asset_id=broken_id).order_by("id").values_list("type", flat=True))
    assert types[-3:] == ["stage.dead", "asset.failed", "asset.deleted"]


# ------------------------------------------------------------------ Kafka (contract, mock cluster)
MOCK = {"test.mock.num.brokers": 1}


def envelope(asset: str | None, n: int) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "type": "asset.deleted", "version": 1, "seq": n, "asset": asset,
            "occurred_at": "2026-01-01T00:00:00+00:00", "data": {"asset": asset}}


def test_kafka_keeps_each_assets_events_in_one_partition_in_order():
    bus = KafkaBus("", "mediaintel.events", extra={**MOCK, "topic.metadata.refresh.interval.ms": 100})
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    batch = [envelope(a if i % 3 else b, i + 1) for i in range(30)]
    bus.publish(batch)
    acks = bus.acknowledged
    assert all(isinstance(x, tuple) for x in acks)
    for key in (a, b):
        mine = [acks[i] for i, e in enumerate(batch) if e["asset"] == key]
        assert len({p for p, _ in mine}) == 1  # one partition per asset
        assert [o for _, o in mine] == sorted(o for _, o in mine)  # offsets in the relay's order
    bus.close()


def test_kafka_unreachable_is_a_publish_error_with_nothing_acknowledged():
    bus = KafkaBus("127.0.0.1:27469", "mediaintel.events", timeout=2.0)  # nothing listens there
    with pytest.raises(PublishError) as e:
        bus.publish([envelope(str(uuid.uuid4()), 1), envelope(None, 2)])
    assert e.value.sent == 0 and "Kafka" in str(e.value)


def test_a_kafka_relay_marks_what_the_broker_acknowledged(transactional_db):
    aid = uuid.uuid4()
    with transaction.atomic():
        for _ in range(3):
            publish("asset.deleted", {"asset": aid}, asset_id=aid)
    bus = KafkaBus("", "mediaintel.events", extra=MOCK)
    assert outbox.relay_once(bus).sent == 3 and outbox.backlog() == 0
    bus.close()
