"""Webhooks end to end: a real HTTP receiver on 127.0.0.1, a real worker, signed deliveries with retries."""

from __future__ import annotations

import json
import time

import pytest
from django.db import transaction

from apps.moderation import services, webhooks
from apps.moderation.models import ReviewItem, WebhookDelivery, WebhookSubscription
from tests.conftest import wait_for
from tests.moderation.helpers import Receiver, api, flag, header, make_asset, make_user, moderated

FAST = {"MEDIAINTEL_WEBHOOK_BACKOFF": "0.3", "MEDIAINTEL_WEBHOOK_MAX_ATTEMPTS": "3",
        "MEDIAINTEL_WEBHOOK_TIMEOUT": "5"}


def test_signature_round_trip_and_tampering():
    body = webhooks.body_bytes({"id": "e1", "event": "moderation.decided", "data": {"x": "ü"}})
    sig = webhooks.sign("s3cret", body, timestamp=1_700_000_000)
    assert sig.startswith("t=1700000000,v1=") and len(sig.split("v1=")[1]) == 64
    assert webhooks.verify_signature("s3cret", sig, body, now=1_700_000_010)
    assert not webhooks.verify_signature("other", sig, body, now=1_700_000_010)
    assert not webhooks.verify_signature("s3cret", sig, body + b" ", now=1_700_000_010)
    assert not webhooks.verify_signature("s3cret", sig, body, now=1_700_001_000)  # replayed too late
    assert not webhooks.verify_signature("s3cret", "garbage", body)
    for attempt in (1, 2, 3, 4):  # exponential, with jitter in [0.5, 1] × base·2^(attempt-1)
        full = 5.0 * 2 ** (attempt - 1)
        assert all(0.5 * full <= webhooks.backoff(attempt) <= full for _ in range(20))
    assert webhooks.backoff(30) <= 3600


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture
def flow(transactional_db):
    """A moderator, an uploader's asset in review, and a subscription to decisions."""
    mod, up = make_user("mod-wh", "moderator"), make_user("up-wh", "uploader")
    asset = make_asset(up, title="threatening")
    flag(asset, "threat", 0.9)
    moderated(asset)
    return {"mod": mod, "asset": asset, "item": ReviewItem.objects.get(asset=asset)}


def subscribe(url: str, events: tuple[str, ...] = ("moderation.decided",)) -> WebhookSubscription:
    return WebhookSubscription.objects.create(url=url, secret="whsec_test_secret_0123456789", events=list(events))


def decide_via_api(flow, outcome: str = "reject") -> dict:
    c = api(flow["mod"])
    assert c.post(f"/api/v1/review-items/{flow['item'].pk}/claim").status_code == 200
    r = c.post(f"/api/v1/review-items/{flow['item'].pk}/decide",
               {"outcome": outcome, "reason_codes": ["harassment/threat"]}, format="json")
    assert r.status_code == 201, r.json()
    return r.json()


@pytest.mark.slow
def test_decision_is_delivered_signed(start_worker, flow, receiver):
    start_worker(env=FAST)
    sub = subscribe(receiver.url)
    decision = decide_via_api(flow)
    d = wait_for(lambda: WebhookDelivery.objects.filter(status="delivered").first(), timeout=60,
                 what="the delivery")
    assert len(receiver.requests) == 1
    req = receiver.requests[0]
    assert header(req, "X-MediaIntel-Event") == "moderation.decided"
    assert header(req, "X-MediaIntel-Delivery") == str(d.pk)
    assert header(req, "Content-Type") == "application/json"
    assert webhooks.verify_signature(sub.secret, header(req, "X-MediaIntel-Signature"), req.body)
    body = req.json
    assert body["event"] == "moderation.decided" and body["id"] == str(d.event_id)
    assert body["data"]["decision"] == decision["id"] and body["data"]["outcome"] == "reject"
    assert body["data"]["automated_decision"] is False and body["data"]["reason_codes"] == ["harassment/threat"]
    assert (d.attempts, d.last_status_code, d.last_error) == (1, 200, "") and d.delivered_at


@pytest.mark.slow
def test_receiver_failing_twice_gets_three_attempts(start_worker, flow, receiver):
    receiver.statuses = [500, 500]
    start_worker(env=FAST)
    subscribe(receiver.url)
    decide_via_api(flow)
    d = wait_for(lambda: WebhookDelivery.objects.filter(status="delivered").first(), timeout=60,
                 what="delivery after retries")
    assert d.attempts == 3 and d.last_status_code == 200
    assert len(receiver.requests) == 3
    assert len({r.body for r in receiver.requests}) == 1  # the same event each time
    assert {header(r, "X-MediaIntel-Delivery") for r in receiver.requests} == {str(d.pk)}
    stamps = [int(header(r, "X-MediaIntel-Signature").split(",")[0][2:]) for r in receiver.requests]
    assert stamps == sorted(stamps)


@pytest.mark.slow
def test_gives_up_after_max_attempts_then_manual_redelivery(start_worker, flow, receiver):
    receiver.default = 503
    start_worker(env=FAST)
    subscribe(receiver.url)
    decide_via_api(flow)
    d = wait_for(lambda: WebhookDelivery.objects.filter(status="failed").first(), timeout=60, what="giving up")
    assert d.attempts == 3 and d.last_status_code == 503 and "503" in d.last_error
    assert d.next_attempt_at is None and len(receiver.requests) == 3
    time.sleep(1.5)
    assert len(receiver.requests) == 3  # no more attempts
    receiver.default = 204
    admin = api(make_user("admin-wh", "admin"))
    r = admin.post(f"/api/v1/webhook-deliveries/{d.pk}/redeliver")
    assert r.status_code == 202 and r.json()["status"] == "pending"
    d = wait_for(lambda: WebhookDelivery.objects.filter(pk=d.pk, status="delivered").first(), timeout=60,
                 what="manual redelivery")
    assert d.attempts == 1 and d.last_status_code == 204 and len(receiver.requests) == 4
    log = admin.get("/api/v1/webhook-deliveries/", {"status": "delivered"}).json()
    assert [x["id"] for x in log["results"]] == [d.pk]


@pytest.mark.slow
def test_event_is_written_in_the_decisions_transaction(start_worker, flow, receiver):
    start_worker(env=FAST)
    subscribe(receiver.url)
    mod, item = flow["mod"], flow["item"]
    services.claim(item.pk, mod)

    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():
        services.decide(item.pk, mod, "reject", reason_codes=["harassment/threat"])
        assert WebhookDelivery.objects.count() == 1  # written with the decision…
        raise Boom
    assert WebhookDelivery.objects.count() == 0  # …and gone with it
    item.refresh_from_db()
    assert item.state == "claimed" and not item.decisions.exists()
    # the committed decision is delivered, and it is the only request the receiver ever sees
    d = services.decide(item.pk, mod, "approve")
    wait_for(lambda: WebhookDelivery.objects.filter(status="delivered").exists(), timeout=60, what="delivery")
    time.sleep(1)
    assert [json.loads(r.body)["data"]["decision"] for r in receiver.requests] == [str(d.pk)]


@pytest.mark.slow
def test_sweep_sends_deliveries_whose_message_was_lost(start_worker, flow, receiver, settings):
    from datetime import timedelta

    from django.utils import timezone

    start_worker(env=FAST)
    sub = subscribe(receiver.url, ("review.created",))
    # an outbox row whose task message never reached the broker
    d = WebhookDelivery.objects.create(subscription=sub, event="review.created", event_id="00000000-0000-4000-8000-"
                                       "000000000001", payload={"id": "x", "event": "review.created", "data": {}},
                                       next_attempt_at=timezone.now() - timedelta(minutes=5))
    fresh = WebhookDelivery.objects.create(subscription=sub, event="review.created",
                                           event_id="00000000-0000-4000-8000-000000000002",
                                           payload={"id": "y", "event": "review.created", "data": {}},
                                           next_attempt_at=timezone.now())
    assert webhooks.sweep() == 1  # the fresh one still has its own message in flight
    wait_for(lambda: WebhookDelivery.objects.filter(pk=d.pk, status="delivered").exists(), timeout=60,
             what="swept delivery")
    assert webhooks.sweep() == 0
    fresh.refresh_from_db()
    assert fresh.status == "pending" and len(receiver.requests) == 1
