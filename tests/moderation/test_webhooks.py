"""Webhooks end to end: a real HTTP receiver on 127.0.0.1, a real worker, signed deliveries with retries,
and the failure modes of sending (slow and trickling receivers, a worker killed mid-send, duplicate
messages): each ends with nothing lost, nothing sent twice at once, and the outcome visible."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.moderation import actions, services, webhooks
from apps.moderation.models import ReviewItem, WebhookDelivery, WebhookSubscription
from mediacommon import routing
from tests.conftest import wait_for
from tests.moderation.helpers import Receiver, Trickler, api, flag, header, make_asset, make_user, moderated

# the receivers of these tests listen on 127.0.0.1: an on-premises setup
FAST = {"MEDIAINTEL_WEBHOOK_BACKOFF": "0.3", "MEDIAINTEL_WEBHOOK_MAX_ATTEMPTS": "3",
        "MEDIAINTEL_WEBHOOK_TIMEOUT": "5", "MEDIAINTEL_WEBHOOK_ALLOW_PRIVATE": "1"}


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
    actions.claim_review(item.pk, mod)

    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():
        actions.decide_review(item.pk, mod, "reject", reason_codes=["harassment/threat"])
        assert WebhookDelivery.objects.count() == 1  # written with the decision…
        raise Boom
    assert WebhookDelivery.objects.count() == 0  # …and gone with it
    item.refresh_from_db()
    assert item.state == "claimed" and not item.decisions.exists()
    # the committed decision is delivered, and it is the only request the receiver ever sees
    d = actions.decide_review(item.pk, mod, "approve")
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


def test_deliveries_are_published_on_their_own_queue_and_the_sweep_runs_on_maintenance(transactional_db, settings):
    import redis

    broker = redis.Redis.from_url(settings.BROKER_URL)
    broker.flushdb()
    subscribe("https://93.184.215.14/hook", ("review.created",))  # stored only: no worker runs here
    with transaction.atomic():
        assert services.emit("review.created", {"x": 1}) == 1
    assert (broker.llen("webhooks"), broker.llen("moderate")) == (1, 0)
    WebhookDelivery.objects.update(next_attempt_at=timezone.now() - timedelta(minutes=5))
    assert webhooks.sweep() == 1
    assert (broker.llen("webhooks"), broker.llen("moderate")) == (2, 0)
    broker.flushdb()
    assert routing.TASK_QUEUES["mediaintel.webhooks.deliver"] == "webhooks"
    assert routing.TASK_QUEUES["mediaintel.webhooks.sweep"] == "maintenance"
    for role, gpu in (("cpu", True), ("cpu", False), ("all", False)):
        assert "webhooks" in routing.queues_for_role(role, gpu_workers=gpu)
    assert "moderate" not in routing.ROLES["gpu"] and "webhooks" not in routing.ROLES["gpu"]


@pytest.mark.slow
def test_receiver_slower_than_the_deadline_fails_after_exactly_max_attempts(start_worker, flow, receiver):
    receiver.default_delay = 4.0  # every answer comes 3 s after the 1 s deadline
    start_worker(env={**FAST, "MEDIAINTEL_WEBHOOK_TIMEOUT": "1"})
    subscribe(receiver.url)
    decide_via_api(flow)
    d = wait_for(lambda: WebhookDelivery.objects.filter(status="failed").first(), timeout=90, what="giving up")
    assert (d.attempts, d.last_error_kind, d.last_status_code, d.next_attempt_at) == (3, "timeout", None, None)
    time.sleep(2)
    assert len(receiver.requests) == 3  # exactly max attempts, then nothing more
    # visible where an operator looks: the delivery log, the console, the audit trail
    admin_user = make_user("admin-slow", "admin")
    admin = api(admin_user)
    console = Client()
    console.force_login(admin_user)
    page = console.get(reverse("console-webhooks")).content.decode()
    assert f"<td>{d.pk}</td>" in page and "<b>timeout</b>" in page
    listed = admin.get("/api/v1/webhook-deliveries/", {"status": "failed", "last_error_kind": "timeout"}).json()[
        "results"]
    assert [x["id"] for x in listed] == [d.pk]
    assert listed[0]["last_error_kind"] == "timeout" and "1" in listed[0]["last_error"]
    ev = AuditEvent.objects.get(verb="webhook.failed", target_id=str(d.pk))
    assert ev.actor_type == "system" and ev.payload["attempts"] == 3 and ev.payload["error_kind"] == "timeout"


@pytest.mark.slow
def test_a_send_in_flight_is_never_sent_twice(start_worker, flow, settings):
    """The receiver trickles its answer (one byte every 0.5 s, ~45 s in all); meanwhile the sweep runs
    with no grace and duplicate messages are published: one request, cut at the deadline, counted."""
    settings.MEDIAINTEL_WEBHOOK_SWEEP_GRACE = 0
    t = Trickler(interval=0.5).start()
    try:
        start_worker(env={**FAST, "MEDIAINTEL_WEBHOOK_TIMEOUT": "2", "MEDIAINTEL_WEBHOOK_MAX_ATTEMPTS": "1"},
                     concurrency=3)
        subscribe(t.url)
        decide_via_api(flow)
        wait_for(lambda: t.requests, timeout=60, what="the first request")
        pk = WebhookDelivery.objects.get().pk

        def duplicate() -> None:
            webhooks.sweep()
            webhooks.send(pk)

        d = wait_for(lambda: WebhookDelivery.objects.exclude(status="pending").first(), timeout=60, every=0.5,
                     tick=duplicate, what="the end of the delivery")
        for _ in range(6):
            duplicate()
            time.sleep(0.5)
        assert t.requests == 1
        assert (d.status, d.attempts, d.last_error_kind) == ("failed", 1, "timeout")
    finally:
        t.stop()


@pytest.mark.slow
def test_worker_killed_mid_send_counts_the_attempt_and_the_sweep_resends_after_the_lease(start_worker, flow,
                                                                                          receiver, settings):
    settings.MEDIAINTEL_WEBHOOK_SWEEP_GRACE = 1
    env = {**FAST, "MEDIAINTEL_WEBHOOK_TIMEOUT": "5"}
    receiver.delays = [4.0]  # the first request is still unanswered when its worker dies
    w = start_worker(env=env)
    subscribe(receiver.url)
    decide_via_api(flow)
    wait_for(lambda: receiver.requests, timeout=60, what="the first request")
    w.kill()
    d = WebhookDelivery.objects.get()
    assert (d.status, d.attempts) == ("pending", 1)  # counted when the send began
    assert d.next_attempt_at > timezone.now() + timedelta(seconds=5)  # leased past the deadline
    assert webhooks.sweep() == 0  # the lease outlives the send: not re-published
    start_worker(env=env, name="w2")
    d = wait_for(lambda: WebhookDelivery.objects.filter(status="delivered").first(), timeout=90,
                 tick=webhooks.sweep, what="the resend after the lease")
    assert d.attempts == 2 and len(receiver.requests) == 2
    assert {header(r, "X-MediaIntel-Delivery") for r in receiver.requests} == {str(d.pk)}
    assert WebhookDelivery.objects.count() == 1  # nothing else pending, nothing lost


@pytest.mark.slow
def test_by_default_a_worker_refuses_a_receiver_on_localhost(start_worker, flow, receiver):
    """Without MEDIAINTEL_WEBHOOK_ALLOW_PRIVATE the name ``localhost`` (loopback) is never contacted."""
    env = {k: v for k, v in FAST.items() if k != "MEDIAINTEL_WEBHOOK_ALLOW_PRIVATE"}
    start_worker(env=env)
    subscribe(f"http://localhost:{receiver.server.server_address[1]}/hook")  # stored before any check
    decide_via_api(flow)
    d = wait_for(lambda: WebhookDelivery.objects.filter(status="failed").first(), timeout=60, what="refusal")
    assert (d.attempts, d.last_error_kind, d.last_status_code) == (3, "refused_target", None)
    assert "loopback" in d.last_error
    assert receiver.requests == []
    assert not WebhookDelivery.objects.filter(status="pending").exists()
    assert AuditEvent.objects.filter(verb="webhook.failed", target_id=str(d.pk)).count() == 1
