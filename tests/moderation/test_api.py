"""The moderation API against the real database: roles, the review flow, appeals, policies, taxonomy,
banks, webhooks and audit endpoints, and a warning-free schema."""

from __future__ import annotations

import csv
import io

import pytest
import yaml
from django.core.management import call_command

from apps.assets.models import MediaAsset
from apps.audit.models import AuditEvent
from apps.moderation.models import Appeal, Decision, HashBank, HashBankEntry, PolicyVersion, ReviewItem
from tests.moderation.helpers import api, flag, make_asset, make_user, moderated, phash, random_bits

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(db):
    return {"up": make_user("uploader1", "uploader"), "up2": make_user("uploader2", "uploader"),
            "mod": make_user("mod1", "moderator"), "mod2": make_user("mod2", "moderator"),
            "admin": make_user("admin1", "admin")}


@pytest.fixture
def flagged(people):
    """An asset of uploader1 whose text threatens someone: in review."""
    asset = make_asset(people["up"], title="threat")
    flag(asset, "threat", 0.9)
    moderated(asset)
    return asset


def err(resp) -> str:
    return resp.json()["error"]["code"]


def test_uploaders_never_see_review_data_or_admin_endpoints(people, flagged):
    up = api(people["up"])
    item = ReviewItem.objects.get(asset=flagged)
    for method, url in [("get", "/api/v1/review-items/"), ("get", f"/api/v1/review-items/{item.pk}/"),
                        ("post", f"/api/v1/review-items/{item.pk}/claim"),
                        ("post", f"/api/v1/review-items/{item.pk}/decide"),
                        ("get", "/api/v1/policies/"), ("get", "/api/v1/audit/"),
                        ("get", f"/api/v1/assets/{flagged.pk}/audit/"), ("get", "/api/v1/hash-banks/"),
                        ("get", "/api/v1/webhooks/"), ("get", "/api/v1/webhook-deliveries/"),
                        ("post", "/api/v1/categories/")]:
        r = getattr(up, method)(url, {}, format="json")
        assert r.status_code == 403, (url, r.status_code)
        assert err(r) == "permission_denied"
    assert api(people["up"]).get("/api/v1/categories/").status_code == 200
    from rest_framework.test import APIClient

    anon = APIClient().get("/api/v1/review-items/")
    assert anon.status_code == 401 and err(anon) == "not_authenticated"


def test_uploaders_see_decisions_on_their_own_assets_only(people):
    mine, theirs = make_asset(people["up"]), make_asset(people["up2"])
    moderated(mine)
    moderated(theirs)
    d_mine, d_theirs = Decision.objects.get(asset=mine), Decision.objects.get(asset=theirs)
    assert d_mine.outcome == "approve" and d_mine.automated_decision and "No category" in d_mine.ground
    up = api(people["up"])
    body = up.get("/api/v1/decisions/").json()
    assert [d["id"] for d in body["results"]] == [str(d_mine.pk)]
    assert up.get(f"/api/v1/decisions/{d_theirs.pk}/").status_code == 404
    one = up.get(f"/api/v1/decisions/{d_mine.pk}/").json()
    assert one["ground"] == d_mine.ground and one["policy"] == "default@v1" and one["review_item"] is None
    assert up.post("/api/v1/appeals/", {"decision": str(d_theirs.pk), "reason": "not mine"},
                   format="json").status_code == 404
    # moderators see everything
    assert api(people["mod"]).get("/api/v1/decisions/").json()["count"] == 2
    assert up.get("/api/v1/assets/").json()["count"] == 1


def test_review_queue_claim_decide_and_counts(people, flagged):
    other = make_asset(people["up2"])
    flag(other, "insult", 0.8, "idiot")
    moderated(other)
    mod, mod2 = api(people["mod"]), api(people["mod2"])
    body = mod.get("/api/v1/review-items/").json()
    assert body["count"] == 2 and body["counts"]["by_state"]["open"] == 2
    assert body["counts"]["by_category"] == {"harassment/insult": 1, "harassment/threat": 1}
    threat = mod.get("/api/v1/review-items/", {"category": "harassment/threat"}).json()
    assert [r["asset"] for r in threat["results"]] == [str(flagged.pk)]
    item = ReviewItem.objects.get(asset=flagged)
    detail = mod.get(f"/api/v1/review-items/{item.pk}/").json()
    assert detail["asset"]["id"] == str(flagged.pk)
    assert [s["category"] for s in detail["signals"]] == ["harassment/threat"]
    assert detail["signals"][0]["evidence"]["matched"] == "kill you"
    # deciding needs a claim; a claim is exclusive
    r = mod.post(f"/api/v1/review-items/{item.pk}/decide", {"outcome": "approve"}, format="json")
    assert r.status_code == 409 and err(r) == "not_claimed"
    assert mod.post(f"/api/v1/review-items/{item.pk}/claim").status_code == 200
    r = mod2.post(f"/api/v1/review-items/{item.pk}/claim")
    assert r.status_code == 409 and err(r) == "claimed"
    assert mod.get("/api/v1/review-items/", {"mine": "true"}).json()["count"] == 1
    assert mod2.get("/api/v1/review-items/", {"mine": "true"}).json()["count"] == 0
    r = mod2.post(f"/api/v1/review-items/{item.pk}/release")
    assert r.status_code == 409 and err(r) == "not_claimed"
    r = mod.post(f"/api/v1/review-items/{item.pk}/decide", {"outcome": "reject"}, format="json")
    assert r.status_code == 400 and "reason code" in r.json()["error"]["message"]
    r = mod.post(f"/api/v1/review-items/{item.pk}/decide", {"outcome": "reject", "reason_codes": ["nope/none"]},
                 format="json")
    assert r.status_code == 400 and err(r) == "invalid"
    r = mod.post(f"/api/v1/review-items/{item.pk}/decide", {"outcome": "maybe"}, format="json")
    assert r.status_code == 400 and err(r) == "invalid"
    r = mod.post(f"/api/v1/review-items/{item.pk}/decide",
                 {"outcome": "reject", "reason_codes": ["harassment/threat"], "note": "clear threat"}, format="json")
    assert r.status_code == 201, r.json()
    d = r.json()
    assert d["moderator"] == "mod1" and not d["automated_decision"] and "clear threat" in d["ground"]
    flagged.refresh_from_db()
    assert flagged.moderation_state == "blocked"
    assert mod.get("/api/v1/review-items/").json()["count"] == 1  # default: pending only
    decided = mod.get("/api/v1/review-items/", {"state": "decided"}).json()
    assert decided["count"] == 1 and decided["counts"]["by_state"]["decided"] == 1
    # release gives an item back
    it2 = ReviewItem.objects.get(asset=other)
    assert mod2.post(f"/api/v1/review-items/{it2.pk}/claim").json()["claimed_by"] == "mod2"
    assert mod2.post(f"/api/v1/review-items/{it2.pk}/release").json()["state"] == "open"
    verbs = list(AuditEvent.objects.filter(target_id=str(other.pk)).values_list("verb", flat=True))
    assert verbs == ["review.created", "review.claimed", "review.released"]


def test_appeals_are_decided_by_a_different_moderator(people, flagged):
    mod, mod2, up = api(people["mod"]), api(people["mod2"]), api(people["up"])
    item = ReviewItem.objects.get(asset=flagged)
    mod.post(f"/api/v1/review-items/{item.pk}/claim")
    decision = mod.post(f"/api/v1/review-items/{item.pk}/decide",
                        {"outcome": "reject", "reason_codes": ["harassment/threat"]}, format="json").json()
    mine = up.get(f"/api/v1/decisions/{decision['id']}/").json()
    assert mine["moderator"] is None and mine["reason_codes"] == ["harassment/threat"]
    r = api(people["up2"]).post("/api/v1/appeals/", {"decision": decision["id"], "reason": "x"}, format="json")
    assert r.status_code == 404
    r = up.post("/api/v1/appeals/", {"decision": decision["id"], "reason": "It was a quote from a film."},
                format="json")
    assert r.status_code == 201, r.json()
    appeal = r.json()
    again = up.post("/api/v1/appeals/", {"decision": decision["id"], "reason": "again"}, format="json")
    assert again.status_code == 409 and err(again) == "duplicate"
    assert up.post(f"/api/v1/appeals/{appeal['id']}/decide", {"upheld": False}, format="json").status_code == 403
    same = mod.post(f"/api/v1/appeals/{appeal['id']}/decide", {"upheld": False}, format="json")
    assert same.status_code == 403 and err(same) == "same_moderator"
    assert mod2.get("/api/v1/appeals/", {"state": "open"}).json()["count"] == 1
    r = mod2.post(f"/api/v1/appeals/{appeal['id']}/decide", {"upheld": False, "note": "a film quote"},
                  format="json")
    assert r.status_code == 200 and r.json()["state"] == "decided" and r.json()["decided_by"] == "mod2"
    flagged.refresh_from_db()
    assert flagged.moderation_state == "approved"
    latest = Decision.objects.filter(asset=flagged).first()
    assert latest.outcome == "approve" and latest.moderator == people["mod2"] and "Appeal" in latest.ground
    seen = up.get(f"/api/v1/appeals/{appeal['id']}/").json()
    assert seen["upheld"] is False and seen["decided_by"] is None
    assert api(people["up2"]).get("/api/v1/appeals/").json()["count"] == 0
    twice = mod2.post(f"/api/v1/appeals/{appeal['id']}/decide", {"upheld": True}, format="json")
    assert twice.status_code == 409 and err(twice) == "decided"
    assert Appeal.objects.get().decided_by == people["mod2"]


def test_policies_moderators_read_admins_write(people):
    mod, admin = api(people["mod"]), api(people["admin"])
    body = mod.get("/api/v1/policies/").json()
    assert [p["name"] for p in body] == ["default"] and body[0]["active_version"]["number"] == 1
    rules = body[0]["active_version"]["rules"]
    rules["categories"]["harassment/threat"]["review"] = 0.3
    assert mod.post("/api/v1/policies/default/versions", {"rules": rules}, format="json").status_code == 403
    assert mod.post("/api/v1/policies/import", "categories: {}", content_type="application/yaml").status_code == 403
    bad = admin.post("/api/v1/policies/default/versions",
                     {"rules": {"categories": {"harassment/threat": {"review": 0.9, "block": 0.2}}}}, format="json")
    assert bad.status_code == 400 and err(bad) == "invalid_policy" and "below" in bad.json()["error"]["message"]
    unknown = admin.post("/api/v1/policies/default/versions",
                         {"rules": {"categories": {"made/up": {"review": 0.5, "block": 0.9}}}}, format="json")
    assert unknown.status_code == 409 and err(unknown) == "unknown_category"  # add it to the taxonomy first
    assert "'made/up'" in unknown.json()["error"]["message"]
    r = admin.post("/api/v1/policies/default/versions", {"rules": rules, "note": "stricter on threats"},
                   format="json")
    assert r.status_code == 201 and r.json()["number"] == 2 and r.json()["active"] is True
    exported = mod.get("/api/v1/policies/default/export")
    assert exported.status_code == 200 and exported["Content-Type"].startswith("application/yaml")
    doc = yaml.safe_load(exported.content)
    assert doc["policy"] == "default" and doc["version"] == 2 and doc["rules"] == rules
    assert yaml.safe_load(mod.get("/api/v1/policies/default/export", {"version": 1}).content)["version"] == 1
    doc["rules"]["categories"]["profanity"]["review"] = 0.5
    doc["note"] = "profanity reviewed"
    r = admin.post("/api/v1/policies/import", yaml.safe_dump(doc), content_type="application/yaml")
    assert r.status_code == 201 and r.json()["created"] and r.json()["version"]["number"] == 3
    assert r.json()["version"]["note"] == "profanity reviewed"
    same = admin.post("/api/v1/policies/import", {"yaml": yaml.safe_dump(doc)}, format="json")
    assert same.status_code == 200 and same.json()["created"] is False
    broken = admin.post("/api/v1/policies/import", "rules: [unclosed", content_type="text/yaml")
    assert broken.status_code == 400 and err(broken) == "invalid_policy"
    versions = mod.get("/api/v1/policies/default/versions").json()
    assert [v["number"] for v in versions] == [3, 2, 1] and versions[0]["created_by"] == "admin1"
    assert PolicyVersion.objects.get(number=3).policy.active_version.number == 3
    assert AuditEvent.objects.filter(verb="policy.versioned").count() == 2


def test_categories_admins_add(people):
    cats = api(people["up"]).get("/api/v1/categories/").json()
    assert "harassment/threat" in {c["code"] for c in cats}
    new = {"code": "fraud/scam", "name": "Scam", "severity": 4, "description": "Fraudulent offers"}
    assert api(people["mod"]).post("/api/v1/categories/", new, format="json").status_code == 403
    admin = api(people["admin"])
    r = admin.post("/api/v1/categories/", new, format="json")
    assert r.status_code == 201 and r.json()["builtin"] is False and r.json()["group"] == "fraud"
    assert admin.post("/api/v1/categories/", new, format="json").status_code == 409  # the code is taken
    assert admin.post("/api/v1/categories/", {**new, "code": "Bad Code!"}, format="json").status_code == 400
    rules = {"categories": {"fraud/scam": {"review": 0.5, "block": 0.95}}}
    assert admin.post("/api/v1/policies/default/versions", {"rules": rules}, format="json").status_code == 201


def test_hash_banks_entries_csv_and_asset_hashes(people):
    assert api(people["mod"]).post("/api/v1/hash-banks/", {"name": "x"}, format="json").status_code == 403
    admin = api(people["admin"])
    r = admin.post("/api/v1/hash-banks/", {"name": "csam-list", "kind": "block", "threshold": 30}, format="json")
    assert r.status_code == 201, r.json()
    bank = r.json()
    h1, h2, h3 = (f"{int(random_bits(i), 2):064x}" for i in (1, 2, 3))
    r = admin.post(f"/api/v1/hash-banks/{bank['id']}/entries", {"hash_hex": h1, "label": "one"}, format="json")
    assert r.status_code == 201 and r.json()["hash_hex"] == h1 and r.json()["quality"] == 100
    entry = r.json()
    again = admin.post(f"/api/v1/hash-banks/{bank['id']}/entries", {"hash_hex": h1.upper()}, format="json")
    assert again.status_code == 200 and again.json()["id"] == entry["id"]
    bad = admin.post(f"/api/v1/hash-banks/{bank['id']}/entries", {"hash_hex": "abc"}, format="json")
    assert bad.status_code == 400 and err(bad) == "invalid_hash"
    r = admin.patch(f"/api/v1/hash-bank-entries/{entry['id']}/", {"enabled": False}, format="json")
    assert r.status_code == 200 and r.json()["enabled"] is False
    assert admin.get("/api/v1/hash-bank-entries/", {"bank": bank["id"], "enabled": "true"}).json()["count"] == 0
    assert admin.patch(f"/api/v1/hash-bank-entries/{entry['id']}/", {"enabled": True},
                       format="json").json()["enabled"] is True
    # CSV import: a header, a new hash, one already there, a malformed row
    text = f"hash_hex,quality,label\n{h2},80,two\n{h1},100,dup\nnot-a-hash,1,bad\n{h3},,three\n"
    r = admin.post(f"/api/v1/hash-banks/{bank['id']}/import", text, content_type="text/csv")
    assert r.status_code == 200, r.json()
    assert r.json()["added"] == 2 and r.json()["existing"] == 1 and len(r.json()["errors"]) == 1
    assert "line 4" in r.json()["errors"][0]
    up = io.BytesIO(f"{h3},50,again\n".encode())
    up.name = "more.csv"
    r = admin.post(f"/api/v1/hash-banks/{bank['id']}/import", {"file": up}, format="multipart")
    assert r.json() == {"added": 0, "existing": 1, "errors": []}
    exported = b"".join(admin.get(f"/api/v1/hash-banks/{bank['id']}/export").streaming_content).decode()
    rows = list(csv.reader(io.StringIO(exported)))
    assert rows[0] == ["hash_hex", "quality", "label"]
    assert rows[1:] == [[h1, "100", "one"], [h2, "80", "two"], [h3, "100", "three"]]
    # an asset's hashes (those of sufficient quality)
    asset = make_asset(people["up"], kind="image")
    phash(asset, random_bits(7), quality=90, keyframe_index=0)
    phash(asset, random_bits(8), quality=10, keyframe_index=1)
    r = admin.post(f"/api/v1/hash-banks/{bank['id']}/add-asset", {"asset": str(asset.pk), "label": "seen"},
                   format="json")
    assert r.status_code == 200 and r.json()["added"] == 1
    assert r.json()["entries"][0]["source_asset"] == str(asset.pk)
    listed = admin.get("/api/v1/hash-banks/").json()["results"][0]
    assert (listed["entries"], listed["enabled_entries"]) == (4, 4)
    r = admin.patch(f"/api/v1/hash-banks/{bank['id']}/", {"enabled": False}, format="json")
    assert r.status_code == 200 and r.json()["enabled"] is False and r.json()["entries"] == 4
    verbs = set(AuditEvent.objects.filter(target_type="hash_bank").values_list("verb", flat=True))
    assert {"bank.created", "bank.entry_added", "bank.entry_disabled", "bank.entry_enabled", "bank.imported",
            "bank.entries_added", "bank.updated"} <= verbs
    assert admin.delete(f"/api/v1/hash-banks/{bank['id']}/").status_code == 204
    assert not HashBank.objects.exists() and not HashBankEntry.objects.exists()


def test_webhook_subscriptions_and_deliveries_admin_only(people):
    assert api(people["mod"]).get("/api/v1/webhooks/").status_code == 403
    admin = api(people["admin"])
    bad = admin.post("/api/v1/webhooks/", {"url": "https://93.184.215.14/x", "events": ["nope"]},
                     format="json")
    assert bad.status_code == 400
    ftp = admin.post("/api/v1/webhooks/", {"url": "ftp://example.org/x", "events": ["moderation.decided"]},
                     format="json")
    assert ftp.status_code == 400
    r = admin.post("/api/v1/webhooks/", {"url": "https://93.184.215.14/x",
                                         "events": ["moderation.decided", "review.created"]}, format="json")
    assert r.status_code == 201 and r.json()["secret"].startswith("whsec_")
    sub = r.json()
    assert "secret" not in admin.get(f"/api/v1/webhooks/{sub['id']}/").json()
    # an event now writes an outbox row
    asset = make_asset(people["up"])
    moderated(asset)
    deliveries = admin.get("/api/v1/webhook-deliveries/").json()
    assert deliveries["count"] == 1
    d = deliveries["results"][0]
    assert d["event"] == "moderation.decided" and d["status"] == "pending" and d["payload"]["data"]["asset"] == str(
        asset.pk)
    r = admin.post(f"/api/v1/webhook-deliveries/{d['id']}/redeliver")
    assert r.status_code == 202 and r.json()["attempts"] == 0
    r = admin.patch(f"/api/v1/webhooks/{sub['id']}/", {"enabled": False}, format="json")
    assert r.status_code == 200 and r.json()["enabled"] is False
    assert admin.delete(f"/api/v1/webhooks/{sub['id']}/").status_code == 204
    assert {"webhook.created", "webhook.updated", "webhook.deleted", "webhook.redelivered"} <= set(
        AuditEvent.objects.values_list("verb", flat=True))


def test_audit_endpoints(people, flagged):
    admin, mod = api(people["admin"]), api(people["mod"])
    assert mod.get("/api/v1/audit/").status_code == 403
    body = admin.get("/api/v1/audit/", {"target_type": "asset", "target_id": str(flagged.pk)}).json()
    assert [e["verb"] for e in body["results"]] == ["review.created"]
    assert admin.get("/api/v1/audit/", {"verb_prefix": "review."}).json()["count"] == 1
    assert admin.get("/api/v1/audit/verify").json()["ok"] is True
    events = mod.get(f"/api/v1/assets/{flagged.pk}/audit/").json()
    assert [e["verb"] for e in events["results"]] == ["review.created"]
    assert events["results"][0]["actor_label"] == "policy-engine"
    missing = mod.get("/api/v1/assets/00000000-0000-0000-0000-000000000000/audit/")
    assert missing.status_code == 404


def test_schema_is_warning_free(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    text = (tmp_path / "schema.yaml").read_text()
    for path in ("/api/v1/review-items/{id}/claim", "/api/v1/appeals/{id}/decide", "/api/v1/policies/import",
                 "/api/v1/hash-banks/{id}/import", "/api/v1/webhook-deliveries/{id}/redeliver",
                 "/api/v1/assets/{asset_id}/audit/", "/api/v1/assets/{id}/transcript", "/api/v1/assets/{id}/report",
                 "/api/v1/decisions/statements-of-reasons"):
        assert path in text, path


def test_api_root_lists_the_moderation_endpoints(people):
    body = api(people["mod"]).get("/api/v1/").json()
    assert {"review-items", "decisions", "appeals", "policies", "categories", "hash-banks", "hash-bank-entries",
            "webhooks", "webhook-deliveries", "audit"} <= set(body)
    assert not MediaAsset.objects.exists()
