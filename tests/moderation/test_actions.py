"""Every audited moderation action, from every entry point that offers it (API, console, command, admin).

Each entry point must make the same change and leave exactly one audit record of the action —
its verb, who did it, its target and payload — and an audit write that fails must undo the change
(``tests.audit_failure``: PostgreSQL itself refuses the append). The actions are
``apps.moderation.actions``; the table ``CASES`` lists, per action, its entry points.
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis
import yaml
from django.contrib.admin.sites import site
from django.core.management import call_command
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.moderation.banks import bits_to_hex
from apps.moderation.models import (
    Appeal,
    Category,
    Decision,
    HashBank,
    HashBankEntry,
    Policy,
    PolicyVersion,
    ReviewItem,
    WebhookDelivery,
    WebhookSubscription,
)
from apps.moderation.services import active_policy_version
from tests.audit_failure import undone
from tests.moderation.helpers import api, make_asset, make_user, phash, random_bits

pytestmark = pytest.mark.django_db

THREAT = "harassment/threat"


@pytest.fixture
def people(settings: Any) -> dict[str, Any]:
    settings.MEDIAINTEL_WEBHOOK_ALLOW_PRIVATE = True
    root = make_user("root", "admin")
    root.is_staff = root.is_superuser = True
    root.save()
    return {"ada": make_user("ada", "admin"), "mia": make_user("mia", "moderator"),
            "max": make_user("max", "moderator"), "up": make_user("up", "uploader"), "root": root}


def console(user: Any) -> Client:
    c = Client()
    c.force_login(user)
    return c


# ------------------------------------------------------------------ set-ups
def review_item(p: dict[str, Any], claimed_by: Any = None) -> dict[str, Any]:
    asset = make_asset(p["up"], title="threat.txt")
    item = ReviewItem.objects.create(asset=asset, severity=3, categories=[THREAT],
                                     policy_version=active_policy_version())
    if claimed_by is not None:
        ReviewItem.objects.filter(pk=item.pk).update(state="claimed", claimed_by=claimed_by,
                                                     claim_expires_at=timezone.now() + timezone.timedelta(minutes=5))
    return {"item": item, "asset": asset}


def claimed_item(p: dict[str, Any]) -> dict[str, Any]:
    return review_item(p, claimed_by=p["mia"])


def human_decision(p: dict[str, Any], appeal: bool = False) -> dict[str, Any]:
    asset = make_asset(p["up"], title="threat.txt")
    d = Decision.objects.create(asset=asset, outcome="reject", reason_codes=[THREAT], moderator=p["mia"],
                                policy_version=active_policy_version(), automated_detection=True,
                                automated_decision=False, ground="A moderator: reject")
    ctx = {"asset": asset, "decision": d}
    if appeal:
        ctx["appeal"] = Appeal.objects.create(decision=d, appellant=p["up"], reason="it is a quote")
    return ctx


def policy_change(p: dict[str, Any]) -> dict[str, Any]:
    v = active_policy_version()
    rules = json.loads(json.dumps(v.rules))
    rules["categories"][THREAT] = {**rules["categories"].get(THREAT, {}), "review": 0.33}
    doc = yaml.safe_dump({"policy": "default", "note": "stricter", "rules": rules})
    return {"number": v.number, "rules": rules, "doc": doc}


def bank(p: dict[str, Any], entry: bool = False) -> dict[str, Any]:
    b = HashBank.objects.create(name=f"bank-{uuid.uuid4().hex[:6]}", kind="block")
    ctx: dict[str, Any] = {"bank": b, "bits": random_bits(7)}
    if entry:
        ctx["entry"] = HashBankEntry.objects.create(bank=b, hash=ctx["bits"], quality=90, label="old")
    return ctx


def bank_and_asset(p: dict[str, Any]) -> dict[str, Any]:
    ctx = bank(p)
    ctx["asset"] = make_asset(p["up"], kind="image", title="photo.png")
    phash(ctx["asset"], ctx["bits"], quality=90)
    return ctx


def webhook(p: dict[str, Any], delivery: bool = False) -> dict[str, Any]:
    sub = WebhookSubscription.objects.create(url="http://127.0.0.1:9/hook", events=["moderation.decided"],
                                             secret="whsec_x")
    ctx: dict[str, Any] = {"sub": sub}
    if delivery:
        ctx["delivery"] = WebhookDelivery.objects.create(subscription=sub, event="moderation.decided",
                                                         event_id=uuid.uuid4(), payload={}, status="failed",
                                                         attempts=8)
    return ctx


def csv_file(tmp: Any, bits: str) -> str:
    path = tmp / "bank.csv"
    path.write_text(f"hash_hex,quality,label\n{bits_to_hex(bits)},90,from csv\n")
    return str(path)


def yaml_file(tmp: Any, text: str) -> str:
    path = tmp / "policy.yaml"
    path.write_text(text)
    return str(path)


# ------------------------------------------------------------------ the table
Entry = Callable[[dict[str, Any], dict[str, Any], Any], Any]


@dataclass
class Case:
    verb: str
    setup: Callable[[dict[str, Any]], dict[str, Any]]
    entries: dict[str, tuple[str, Entry]]  # entry point → (actor label, call(people, ctx, tmp_path))
    done: Callable[[dict[str, Any]], bool]
    target: Callable[[dict[str, Any]], tuple[str, str]]
    payload: Callable[[dict[str, Any]], dict[str, Any]] = field(default=lambda ctx: {})


def _item(ctx: dict[str, Any]) -> ReviewItem:
    return ReviewItem.objects.get(pk=ctx["item"].pk)


def _asset_target(ctx: dict[str, Any]) -> tuple[str, str]:
    return "asset", str(ctx["asset"].pk)


def _bank_target(ctx: dict[str, Any]) -> tuple[str, str]:
    return "hash_bank", ctx["bank"].name


def _decide_by_api(outcome: str) -> Entry:
    def call(p: dict[str, Any], ctx: dict[str, Any], tmp: Any) -> Any:
        codes = [] if outcome != "reject" else [THREAT]
        return api(p["mia"]).post(reverse("review-item-decide", args=[ctx["item"].pk]),
                                  {"outcome": outcome, "reason_codes": codes, "note": "n"}, format="json")
    return call


def _decide_by_console(outcome: str) -> Entry:
    def call(p: dict[str, Any], ctx: dict[str, Any], tmp: Any) -> Any:
        return console(p["mia"]).post(reverse("review-decide", args=[ctx["item"].pk]),
                                      {"outcome": outcome, "reasons": [THREAT], "note": "n"})
    return call


def _bulk_reject(p: dict[str, Any], ctx: dict[str, Any], tmp: Any) -> Any:
    return console(p["mia"]).post(reverse("review-bulk"), {"items": [str(ctx["item"].pk)], "outcome": "reject",
                                                           "reasons": [THREAT]})


def _admin_bank_form(b: HashBank, **changes: Any) -> dict[str, Any]:
    form = {"name": b.name, "kind": b.kind, "threshold": b.threshold, "min_quality": b.min_quality}
    if b.enabled:
        form["enabled"] = "on"
    form.update(changes)
    return form


CASES: dict[str, Case] = {
    "review-claim": Case(
        "review.claimed", review_item,
        {"api": ("mia", lambda p, c, t: api(p["mia"]).post(reverse("review-item-claim", args=[c["item"].pk]))),
         "console": ("mia", lambda p, c, t: console(p["mia"]).post(reverse("review-claim", args=[c["item"].pk])))},
        lambda c: _item(c).state == "claimed", _asset_target, lambda c: {"review_item": str(c["item"].pk)}),
    "review-release": Case(
        "review.released", claimed_item,
        {"api": ("mia", lambda p, c, t: api(p["mia"]).post(reverse("review-item-release", args=[c["item"].pk]))),
         "console": ("mia", lambda p, c, t: console(p["mia"]).post(reverse("review-release", args=[c["item"].pk])))},
        lambda c: _item(c).state == "open", _asset_target, lambda c: {"review_item": str(c["item"].pk)}),
    "review-decide": Case(
        "moderation.decided", claimed_item,
        {"api": ("mia", _decide_by_api("reject")), "console": ("mia", _decide_by_console("reject")),
         "console-bulk": ("mia", _bulk_reject)},
        lambda c: _item(c).state == "decided" and Decision.objects.filter(asset=c["asset"], outcome="reject").exists(),
        _asset_target, lambda c: {"outcome": "reject", "reason_codes": [THREAT], "automated_decision": False}),
    "review-escalate": Case(
        "moderation.decided", claimed_item,
        {"api": ("mia", _decide_by_api("escalate")), "console": ("mia", _decide_by_console("escalate"))},
        lambda c: _item(c).state == "escalated", _asset_target, lambda c: {"outcome": "escalate"}),
    "appeal-open": Case(
        "appeal.opened", human_decision,
        {"api": ("up", lambda p, c, t: api(p["up"]).post(reverse("appeal-list"), {
            "decision": str(c["decision"].pk), "reason": "it is a quote"}, format="json"))},
        lambda c: Appeal.objects.filter(decision=c["decision"]).exists(), _asset_target,
        lambda c: {"decision": str(c["decision"].pk)}),
    "appeal-decide": Case(
        "appeal.decided", lambda p: human_decision(p, appeal=True),
        {"api": ("max", lambda p, c, t: api(p["max"]).post(reverse("appeal-decide", args=[c["appeal"].pk]), {
            "upheld": False, "note": "a quote"}, format="json"))},
        lambda c: Appeal.objects.get(pk=c["appeal"].pk).state == "decided"
        and Decision.objects.filter(asset=c["asset"], outcome="approve").exists(),
        _asset_target, lambda c: {"appeal": str(c["appeal"].pk), "upheld": False}),
    "policy-version": Case(
        "policy.versioned", policy_change,
        {"api": ("ada", lambda p, c, t: api(p["ada"]).post(reverse("policy-versions", args=["default"]), {
            "rules": c["rules"], "note": "stricter"}, format="json")),
         "admin": ("root", lambda p, c, t: console(p["root"]).post("/admin/moderation/policyversion/add/", {
             "policy": Policy.objects.get(name="default").pk, "rules": json.dumps(c["rules"]), "note": "stricter"}))},
        lambda c: active_policy_version().number == c["number"] + 1, lambda c: ("policy", "default"),
        lambda c: {"version": c["number"] + 1}),
    "policy-import": Case(
        "policy.versioned", policy_change,
        {"api": ("ada", lambda p, c, t: api(p["ada"]).post(reverse("policy-import-yaml"), c["doc"],
                                                            content_type="application/yaml")),
         "console": ("ada", lambda p, c, t: console(p["ada"]).post(reverse("console-policy"), {"document": c["doc"]})),
         "command": ("policy-command", lambda p, c, t: call_command("policy", "import", yaml_file(t, c["doc"]),
                                                                    stdout=io.StringIO()))},
        lambda c: active_policy_version().number == c["number"] + 1, lambda c: ("policy", "default"),
        lambda c: {"version": c["number"] + 1}),
    "category-create": Case(
        "category.created", lambda p: {"code": "scam/crypto"},
        {"api": ("ada", lambda p, c, t: api(p["ada"]).post(reverse("category-list"), {
            "code": c["code"], "name": "Crypto scams", "severity": 3}, format="json")),
         "admin": ("root", lambda p, c, t: console(p["root"]).post("/admin/moderation/category/add/", {
             "code": c["code"], "name": "Crypto scams", "severity": 3, "description": ""}))},
        lambda c: Category.objects.filter(code=c["code"], builtin=False).exists(), lambda c: ("category", c["code"]),
        lambda c: {"name": "Crypto scams", "severity": 3}),
    "bank-create": Case(
        "bank.created", lambda p: {"name": "new-bank"},
        {"api": ("ada", lambda p, c, t: api(p["ada"]).post(reverse("hash-bank-list"), {
            "name": c["name"], "kind": "allow", "threshold": 20}, format="json")),
         "command": ("bank-command", lambda p, c, t: call_command("bank", "create", c["name"], "--kind", "allow",
                                                                  "--threshold", "20", stdout=io.StringIO())),
         "admin": ("root", lambda p, c, t: console(p["root"]).post("/admin/moderation/hashbank/add/", {
             "name": c["name"], "kind": "allow", "threshold": 20, "min_quality": 50, "enabled": "on"}))},
        lambda c: HashBank.objects.filter(name=c["name"], kind="allow", threshold=20).exists(),
        lambda c: ("hash_bank", c["name"]), lambda c: {"kind": "allow", "threshold": 20}),
    "bank-update": Case(
        "bank.updated", bank,
        {"api": ("ada", lambda p, c, t: api(p["ada"]).patch(reverse("hash-bank-detail", args=[c["bank"].pk]), {
            "threshold": 12}, format="json")),
         "admin": ("root", lambda p, c, t: console(p["root"]).post(
             f"/admin/moderation/hashbank/{c['bank'].pk}/change/", _admin_bank_form(c["bank"], threshold=12)))},
        lambda c: HashBank.objects.get(pk=c["bank"].pk).threshold == 12, _bank_target, lambda c: {"threshold": 12}),
    "bank-delete": Case(
        "bank.deleted", lambda p: bank(p, entry=True),
        {"api": ("ada", lambda p, c, t: api(p["ada"]).delete(reverse("hash-bank-detail", args=[c["bank"].pk]))),
         "admin": ("root", lambda p, c, t: console(p["root"]).post(
             f"/admin/moderation/hashbank/{c['bank'].pk}/delete/", {"post": "yes"})),
         "admin-bulk": ("root", lambda p, c, t: console(p["root"]).post("/admin/moderation/hashbank/", {
             "action": "delete_selected", "_selected_action": [c["bank"].pk], "post": "yes"}))},
        lambda c: not HashBank.objects.filter(pk=c["bank"].pk).exists(), _bank_target,
        lambda c: {"kind": "block", "entries": 1}),
    "bank-entry-add": Case(
        "bank.entry_added", bank,
        {"api": ("ada", lambda p, c, t: api(p["ada"]).post(reverse("hash-bank-entries", args=[c["bank"].pk]), {
            "hash_hex": bits_to_hex(c["bits"]), "label": "one"}, format="json"))},
        lambda c: c["bank"].entries.filter(hash=c["bits"]).exists(), _bank_target,
        lambda c: {"hash": bits_to_hex(c["bits"]), "label": "one"}),
    "bank-entry-disable": Case(
        "bank.entry_disabled", lambda p: bank(p, entry=True),
        {"api": ("ada", lambda p, c, t: api(p["ada"]).patch(reverse("hash-bank-entry-detail", args=[c["entry"].pk]), {
            "enabled": False}, format="json"))},
        lambda c: not HashBankEntry.objects.get(pk=c["entry"].pk).enabled, _bank_target,
        lambda c: {"entry": c["entry"].pk}),
    "bank-entry-relabel": Case(
        "bank.entry_relabelled", lambda p: bank(p, entry=True),
        {"api": ("ada", lambda p, c, t: api(p["ada"]).patch(reverse("hash-bank-entry-detail", args=[c["entry"].pk]), {
            "label": "new"}, format="json"))},
        lambda c: HashBankEntry.objects.get(pk=c["entry"].pk).label == "new", _bank_target,
        lambda c: {"entry": c["entry"].pk, "label": "new"}),
    "bank-entry-delete": Case(
        "bank.entry_deleted", lambda p: bank(p, entry=True),
        {"api": ("ada", lambda p, c, t: api(p["ada"]).delete(reverse("hash-bank-entry-detail",
                                                                      args=[c["entry"].pk])))},
        lambda c: not HashBankEntry.objects.filter(pk=c["entry"].pk).exists(), _bank_target,
        lambda c: {"entry": c["entry"].pk, "hash": bits_to_hex(c["bits"])}),
    "bank-add-asset": Case(
        "bank.entries_added", bank_and_asset,
        {"api": ("ada", lambda p, c, t: api(p["ada"]).post(reverse("hash-bank-add-asset", args=[c["bank"].pk]), {
            "asset": str(c["asset"].pk), "label": "seen"}, format="json")),
         "command": ("bank-command", lambda p, c, t: call_command("bank", "add-asset", c["bank"].name,
                                                                  str(c["asset"].pk), stdout=io.StringIO()))},
        lambda c: c["bank"].entries.filter(hash=c["bits"], source_asset=c["asset"]).exists(), _bank_target,
        lambda c: {"asset": str(c["asset"].pk), "added": 1}),
    "bank-import": Case(
        "bank.imported", bank,
        {"api": ("ada", lambda p, c, t: api(p["ada"]).post(reverse("hash-bank-import-csv", args=[c["bank"].pk]),
                                                            f"{bits_to_hex(c['bits'])},90,from csv\n",
                                                            content_type="text/csv")),
         "command": ("bank-command", lambda p, c, t: call_command("bank", "import", c["bank"].name,
                                                                  csv_file(t, c["bits"]), stdout=io.StringIO()))},
        lambda c: c["bank"].entries.filter(hash=c["bits"]).exists(), _bank_target,
        lambda c: {"added": 1, "existing": 0, "errors": 0}),
    "bank-scan": Case(
        "bank.scan_requested", lambda p: bank(p, entry=True),
        {"api": ("ada", lambda p, c, t: api(p["ada"]).post(reverse("hash-bank-scan", args=[c["bank"].pk]))),
         "command": ("bank-command", lambda p, c, t: call_command("bank", "scan", c["bank"].name,
                                                                  stdout=io.StringIO()))},
        lambda c: True, _bank_target, lambda c: {"entries": 1}),
    "webhook-create": Case(
        "webhook.created", lambda p: {"url": "http://127.0.0.1:9/new"},
        {"api": ("ada", lambda p, c, t: api(p["ada"]).post(reverse("webhook-list"), {
            "url": c["url"], "events": ["review.created"]}, format="json"))},
        lambda c: WebhookSubscription.objects.filter(url=c["url"]).exists(),
        lambda c: ("webhook", str(WebhookSubscription.objects.get(url=c["url"]).pk)),
        lambda c: {"url": c["url"], "events": ["review.created"]}),
    "webhook-update": Case(
        "webhook.updated", webhook,
        {"api": ("ada", lambda p, c, t: api(p["ada"]).patch(reverse("webhook-detail", args=[c["sub"].pk]), {
            "enabled": False}, format="json"))},
        lambda c: not WebhookSubscription.objects.get(pk=c["sub"].pk).enabled,
        lambda c: ("webhook", str(c["sub"].pk)), lambda c: {"changed": ["enabled"], "enabled": False}),
    "webhook-delete": Case(
        "webhook.deleted", webhook,
        {"api": ("ada", lambda p, c, t: api(p["ada"]).delete(reverse("webhook-detail", args=[c["sub"].pk])))},
        lambda c: not WebhookSubscription.objects.filter(pk=c["sub"].pk).exists(),
        lambda c: ("webhook", str(c["sub"].pk)), lambda c: {"url": c["sub"].url}),
    "webhook-redeliver": Case(
        "webhook.redelivered", lambda p: webhook(p, delivery=True),
        {"api": ("ada", lambda p, c, t: api(p["ada"]).post(reverse("webhook-delivery-redeliver",
                                                                    args=[c["delivery"].pk]))),
         "console": ("ada", lambda p, c, t: console(p["ada"]).post(reverse("console-webhook-redeliver",
                                                                            args=[c["delivery"].pk])))},
        lambda c: WebhookDelivery.objects.get(pk=c["delivery"].pk).status == "pending",
        lambda c: ("webhook_delivery", str(c["delivery"].pk)),
        lambda c: {"before": {"status": "failed", "attempts": 8, "last_status_code": None, "last_error_kind": ""}}),
}

ENTRIES = [(action, entry) for action, case in CASES.items() for entry in case.entries]


def _succeeded(result: Any) -> None:
    status = getattr(result, "status_code", None)
    assert status is None or status < 400, (status, getattr(result, "content", b"")[:500])


@pytest.mark.parametrize(("action", "entry"), ENTRIES)
def test_the_action_changes_the_state_with_one_audit_record_whatever_the_entry_point(
        action: str, entry: str, people: dict[str, Any], tmp_path: Any) -> None:
    case = CASES[action]
    actor, call = case.entries[entry]
    ctx = case.setup(people)
    mark = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    _succeeded(call(people, ctx, tmp_path))
    assert case.done(ctx), f"{action} from {entry} changed nothing"
    [ev] = AuditEvent.objects.filter(id__gt=mark, verb=case.verb)
    assert ev.actor_label == actor
    assert (ev.target_type, ev.target_id) == case.target(ctx)
    expected = case.payload(ctx)
    assert {k: ev.payload.get(k) for k in expected} == expected


@pytest.mark.parametrize(("action", "entry"), [e for e in ENTRIES if e[0] != "bank-scan"])
def test_an_audit_write_that_fails_undoes_the_action_whatever_the_entry_point(
        action: str, entry: str, people: dict[str, Any], tmp_path: Any) -> None:
    case = CASES[action]
    _, call = case.entries[entry]
    ctx = case.setup(people)
    undone(lambda: call(people, ctx, tmp_path))
    assert not case.done(ctx), f"{action} from {entry} stayed done although its audit record was refused"


def test_a_bank_scan_is_sent_only_once_its_audit_record_is_committed(
        people: dict[str, Any], settings: Any, django_capture_on_commit_callbacks: Any) -> None:
    queue = redis.Redis.from_url(settings.BROKER_URL)
    queue.delete("maintenance")
    ctx = bank(people, entry=True)
    with django_capture_on_commit_callbacks(execute=True):
        undone(lambda: api(people["ada"]).post(reverse("hash-bank-scan", args=[ctx["bank"].pk])))
    assert queue.llen("maintenance") == 0
    with django_capture_on_commit_callbacks(execute=True):
        assert api(people["ada"]).post(reverse("hash-bank-scan", args=[ctx["bank"].pk])).status_code == 202
    assert queue.llen("maintenance") == 1
    queue.delete("maintenance")


@pytest.mark.parametrize("model", [ReviewItem, Decision, Appeal, HashBankEntry, Policy, PolicyVersion, Category,
                                   WebhookSubscription, WebhookDelivery], ids=lambda m: m.__name__)
def test_the_admin_cannot_change_or_delete_audited_state_even_for_a_superuser(model: Any,
                                                                             people: dict[str, Any]) -> None:
    request = RequestFactory().get("/")
    request.user = people["root"]
    model_admin = site._registry[model]
    assert not model_admin.has_change_permission(request) and not model_admin.has_delete_permission(request)
