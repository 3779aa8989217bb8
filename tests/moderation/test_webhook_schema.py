"""The OpenAPI 3.1 document describes the webhooks the sender really sends: every event it can
deliver has a ``webhooks`` entry, a real delivery of each (the real sender, to a receiver on
127.0.0.1) matches its body and header schemas, and the verification recipes of docs/api.md
verify it."""

from __future__ import annotations

import os
import re
import subprocess
from datetime import datetime
from pathlib import Path

import pytest
from django.test import Client
from drf_spectacular.validation import validate_schema
from jsonschema import Draft202012Validator

from apps.moderation import actions, webhooks
from apps.moderation.models import Decision, ReviewItem, WebhookDelivery, WebhookSubscription
from apps.moderation.serializers import WebhookSubscriptionSerializer
from apps.pipeline.models import Job
from apps.pipeline.services import maybe_finish
from mediacommon import events as catalog
from tests.moderation.helpers import Receiver, flag, header, make_asset, make_user, moderated

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
SECRET = "whsec_schema_test_0123456789"


def schema_doc() -> dict:
    return Client().get("/api/schema/", {"format": "json"}).json()


def recipe(name: str) -> str:
    """The fenced block after ``<!-- recipe: name -->`` in docs/api.md."""
    m = re.search(rf"<!-- recipe: {re.escape(name)} -->\n```\w*\n(.*?)```", DOC.read_text(), re.S)
    assert m, f"docs/api.md has no recipe {name}"
    return m.group(1)


def validator(doc: dict, schema: dict) -> Draft202012Validator:
    """Validates against ``schema`` with the document's ``#/components/...`` references resolvable."""
    return Draft202012Validator({**schema, "components": doc["components"]},
                                format_checker=Draft202012Validator.FORMAT_CHECKER)


@pytest.mark.django_db
def test_the_schema_is_a_valid_openapi_3_1_document_with_webhooks():
    doc = schema_doc()
    assert doc["openapi"] == "3.1.0"
    validate_schema(doc)  # drf-spectacular's bundled OpenAPI 3.1 JSON Schema
    assert doc["webhooks"]


@pytest.mark.django_db
def test_every_event_the_sender_can_deliver_has_a_webhook_entry_and_no_other():
    doc = schema_doc()
    delivered = set(webhooks.DOMAIN_EVENTS.values())
    assert delivered == set(WebhookSubscription.EVENTS)  # every subscribable event is sent, and only those
    assert set(WebhookSubscriptionSerializer().fields["events"].child.choices) == delivered
    assert set(webhooks.DOMAIN_EVENTS) <= set(catalog.EVENTS)
    assert set(doc["webhooks"]) == delivered
    for event in delivered:
        op = doc["webhooks"][event]["post"]
        names = {p["name"] for p in op["parameters"] if p["in"] == "header"}
        assert {webhooks.SIGNATURE_HEADER, webhooks.EVENT_HEADER, webhooks.DELIVERY_HEADER} <= names
        assert set(op["responses"]) == {"2XX", "default"}
        ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        assert doc["components"]["schemas"][ref.rsplit("/", 1)[-1]] == webhooks.body_schema(event)


def produce_every_event() -> None:
    """Each webhook event, made the way the platform makes it."""
    mod, senior, up = make_user("mod-oas", "moderator"), make_user("senior-oas", "moderator"), make_user(
        "up-oas", "uploader")
    asset = make_asset(up, title="threatening")
    job = Job.objects.create(asset=asset, plan_version="t", status="running")
    maybe_finish(job.pk, asset.pk, statuses=[])  # asset.processed (asset.ready)
    flag(asset, "threat", 0.9)
    moderated(asset)  # review.created
    item = ReviewItem.objects.get(asset=asset)
    actions.claim_review(item.pk, mod)
    decision = actions.decide_review(item.pk, mod, "reject", reason_codes=["harassment/threat"])  # moderation.decided
    appeal = actions.open_appeal(Decision.objects.get(pk=decision.pk), up, "it is a quote")
    actions.decide_appeal(appeal.pk, senior, upheld=True)  # appeal.decided


@pytest.mark.django_db(transaction=True)
def test_a_real_delivery_of_each_event_matches_its_webhook_schema_and_the_doc_recipes_verify_it(
        settings, tmp_path):
    settings.MEDIAINTEL_WEBHOOK_ALLOW_PRIVATE = True
    receiver = Receiver().start()
    try:
        WebhookSubscription.objects.create(url=receiver.url, secret=SECRET, events=list(WebhookSubscription.EVENTS))
        produce_every_event()
        pending = list(WebhookDelivery.objects.order_by("pk").values_list("pk", flat=True))
        for pk in pending:  # the real sender, in this process (no worker needed)
            assert webhooks.deliver(pk)["result"] == "delivered"
    finally:
        receiver.stop()
    doc = schema_doc()
    seen = {r.json["event"] for r in receiver.requests}
    assert seen == set(WebhookSubscription.EVENTS), seen

    namespace: dict = {}
    exec(recipe("verify-python"), namespace)  # noqa: S102 - the documented recipe, run as written
    for r in receiver.requests:
        event = r.json["event"]
        op = doc["webhooks"][event]["post"]
        body_schema = op["requestBody"]["content"]["application/json"]["schema"]
        errors = [e.message for e in validator(doc, body_schema).iter_errors(r.json)]
        assert not errors, (event, errors, r.json)
        assert datetime.fromisoformat(r.json["created_at"].replace("Z", "+00:00")).tzinfo is not None
        for p in op["parameters"]:
            value = header(r, p["name"])
            assert value, f"{event}: header {p['name']} not sent"
            assert not list(validator(doc, p["schema"]).iter_errors(value)), (p["name"], value)
        sig = header(r, webhooks.SIGNATURE_HEADER)
        assert namespace["verify"](SECRET, sig, r.body)
        assert not namespace["verify"]("wrong-secret", sig, r.body)
        assert not namespace["verify"](SECRET, sig, r.body + b" ")

        (tmp_path / "body.json").write_bytes(r.body)
        env = {**os.environ, "SECRET": SECRET, "SIGNATURE": sig}
        ok = subprocess.run(["sh", "-c", recipe("verify-shell")], cwd=tmp_path, env=env, capture_output=True,
                            text=True)
        assert ok.returncode == 0 and ok.stdout.strip() == "verified", (ok.stdout, ok.stderr)
        bad = subprocess.run(["sh", "-c", recipe("verify-shell")], cwd=tmp_path, capture_output=True, text=True,
                             env={**env, "SECRET": "wrong-secret"})
        assert bad.returncode != 0


def test_the_documented_curl_request_is_a_signed_delivery_a_receiver_verifies(tmp_path):
    receiver = Receiver().start()
    try:
        body = webhooks.body_bytes(webhooks.envelope("appeal.decided", {"upheld": True},
                                                     event_id="0b8f4c1e-6d1a-4c57-9a43-3f0a1f6b2d10",
                                                     created_at="2026-12-04T12:00:00Z"))
        (tmp_path / "body.json").write_bytes(body)
        run = subprocess.run(["sh", "-c", recipe("send-curl")], cwd=tmp_path, capture_output=True, text=True,
                             env={**os.environ, "SECRET": SECRET, "RECEIVER": receiver.url})
    finally:
        receiver.stop()
    assert run.returncode == 0 and run.stdout.strip() == "200", (run.stdout, run.stderr)
    (r,) = receiver.requests
    assert r.body == body
    assert re.fullmatch(webhooks.SIGNATURE_PATTERN, header(r, webhooks.SIGNATURE_HEADER))
    assert webhooks.verify_signature(SECRET, header(r, webhooks.SIGNATURE_HEADER), r.body)
