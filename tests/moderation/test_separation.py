"""Separation of duties in moderation, against the real database: nobody judges their own content or
their own appeal (API, console and bulk actions share one check), uploaders never learn which
moderator decided, and a decision has at most one open appeal (a partial unique index)."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from apps.audit.models import AuditEvent
from apps.moderation import actions, services
from apps.moderation.models import Appeal, AppealState, Decision, ReviewItem
from tests.conftest import in_threads
from tests.moderation.helpers import api, flag, make_asset, make_user, moderated

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(db):
    return {"up": make_user("uploader1", "uploader"), "mod": make_user("mod1", "moderator"),
            "mod2": make_user("mod2", "moderator"), "mod3": make_user("mod3", "moderator"),
            "admin": make_user("admin1", "admin")}


def _flagged(uploader):
    asset = make_asset(uploader, title="threat")
    flag(asset, "threat", 0.9)
    moderated(asset)
    return asset


def _err(resp) -> tuple[int, str, str]:
    body = resp.json()["error"]
    return resp.status_code, body["code"], body["message"]


# ------------------------------------------------------------------ own uploads
def test_a_moderator_cannot_claim_or_decide_a_review_item_of_their_own_upload(people):
    asset = _flagged(people["mod"])  # moderators may upload too
    item = ReviewItem.objects.get(asset=asset)
    mod = api(people["mod"])
    status, code, message = _err(mod.post(f"/api/v1/review-items/{item.pk}/claim"))
    assert (status, code) == (403, "own_content") and "your own" in message
    # even holding a claim (granted before this check existed) does not let them decide
    ReviewItem.objects.filter(pk=item.pk).update(state="claimed", claimed_by=people["mod"],
                                                 claim_expires_at="2999-01-01T00:00:00Z")
    status, code, _ = _err(mod.post(f"/api/v1/review-items/{item.pk}/decide",
                                    {"outcome": "approve"}, format="json"))
    assert (status, code) == (403, "own_content")
    assert not Decision.objects.filter(asset=asset, automated_decision=False).exists()
    # admins are no exception
    admin_asset = _flagged(people["admin"])
    admin_item = ReviewItem.objects.get(asset=admin_asset)
    assert _err(api(people["admin"]).post(f"/api/v1/review-items/{admin_item.pk}/claim"))[:2] == (403, "own_content")
    # another moderator decides it normally
    ReviewItem.objects.filter(pk=item.pk).update(state="open", claimed_by=None, claim_expires_at=None)
    mod2 = api(people["mod2"])
    assert mod2.post(f"/api/v1/review-items/{item.pk}/claim").status_code == 200
    assert mod2.post(f"/api/v1/review-items/{item.pk}/decide", {"outcome": "approve"},
                     format="json").status_code == 201


def test_the_service_refuses_self_judging_for_every_caller(people):
    """The one check lives in the services, so commands and future entry points inherit it."""
    asset = _flagged(people["mod"])
    item = ReviewItem.objects.get(asset=asset)
    with pytest.raises(services.ModerationError) as e:
        actions.claim_review(item.pk, people["mod"])
    assert (e.value.code, e.value.status) == ("own_content", 403)
    ReviewItem.objects.filter(pk=item.pk).update(state="claimed", claimed_by=people["mod"],
                                                 claim_expires_at="2999-01-01T00:00:00Z")
    with pytest.raises(services.ModerationError) as e:
        actions.decide_review(item.pk, people["mod"], "reject", reason_codes=["harassment/threat"])
    assert e.value.code == "own_content"


def test_the_console_refuses_own_items_with_a_message(people):
    from django.test import Client

    asset = _flagged(people["mod"])
    item = ReviewItem.objects.get(asset=asset)
    c = Client()
    c.force_login(people["mod"])
    page = c.get(f"/console/review/items/{item.pk}/").content.decode()
    assert "you uploaded it" in page.lower()
    r = c.post(f"/console/review/items/{item.pk}/decide/", {"outcome": "approve"})
    assert r.status_code == 302
    assert "Not decided: you cannot decide on your own upload" in c.get(r.url).content.decode()
    r = c.post("/console/review/bulk/", {"items": [str(item.pk)], "outcome": "approve"})
    assert "Skipped 1" in c.get(r.url).content.decode()
    assert not Decision.objects.filter(asset=asset, automated_decision=False).exists()
    assert ReviewItem.objects.get(pk=item.pk).state == "open"


def test_a_moderator_cannot_decide_an_appeal_of_their_own_upload(people):
    asset = _flagged(people["mod"])
    item = ReviewItem.objects.get(asset=asset)
    actions.claim_review(item.pk, people["mod2"])
    decision = actions.decide_review(item.pk, people["mod2"], "reject", reason_codes=["harassment/threat"])
    mod = api(people["mod"])
    r = mod.post("/api/v1/appeals/", {"decision": str(decision.pk), "reason": "a film quote"}, format="json")
    assert r.status_code == 201, r.json()
    appeal_id = r.json()["id"]
    status, code, message = _err(mod.post(f"/api/v1/appeals/{appeal_id}/decide", {"upheld": False},
                                          format="json"))
    assert (status, code) == (403, "own_content") and "your own" in message
    assert Appeal.objects.get(pk=appeal_id).state == AppealState.OPEN
    assert Decision.objects.filter(asset=asset).count() == 1  # mod2's; nothing new
    # nor can the moderator whose decision is appealed; a third one can
    assert _err(api(people["mod2"]).post(f"/api/v1/appeals/{appeal_id}/decide", {"upheld": True},
                                         format="json"))[:2] == (403, "same_moderator")
    assert api(people["mod3"]).post(f"/api/v1/appeals/{appeal_id}/decide", {"upheld": True},
                                    format="json").status_code == 200


def test_an_appeal_of_an_automated_decision_is_not_decided_by_its_appellant(people):
    asset = make_asset(people["mod"], title="fine")
    moderated(asset)  # automated approve: no moderator to be "different" from
    decision = Decision.objects.get(asset=asset)
    appeal = actions.open_appeal(decision, people["mod"], "wrongly approved? no: I want it reviewed")
    with pytest.raises(services.ModerationError) as e:
        actions.decide_appeal(appeal.pk, people["mod"], upheld=True)
    assert e.value.code == "own_content"


# ------------------------------------------------------------------ who decided stays with the moderators
def test_uploaders_do_not_learn_which_moderator_decided(people):
    asset = _flagged(people["up"])
    item = ReviewItem.objects.get(asset=asset)
    actions.claim_review(item.pk, people["mod2"])
    actions.decide_review(item.pk, people["mod2"], "reject", reason_codes=["harassment/threat"], note="clear threat")
    up = api(people["up"])
    for d in up.get("/api/v1/decisions/", {"asset": str(asset.pk)}).json()["results"]:
        assert "mod2" not in str(d), d
        assert d["moderator"] is None
    human = next(d for d in up.get("/api/v1/decisions/").json()["results"] if not d["automated_decision"])
    assert human["ground"].startswith("A moderator: reject (harassment/threat)") and "clear threat" in human["ground"]
    # appeal, overturned by another moderator: the uploader sees neither name
    r = up.post("/api/v1/appeals/", {"decision": human["id"], "reason": "it was a quote"}, format="json")
    appeal = r.json()
    api(people["mod3"]).post(f"/api/v1/appeals/{appeal['id']}/decide", {"upheld": False, "note": "quote"},
                             format="json")
    seen = str(up.get("/api/v1/decisions/").json()) + str(up.get(f"/api/v1/appeals/{appeal['id']}/").json())
    assert "mod2" not in seen and "mod3" not in seen
    # moderators and the audit trail keep who it was
    mine = api(people["mod"]).get("/api/v1/decisions/", {"asset": str(asset.pk)}).json()["results"]
    assert {d["moderator"] for d in mine} >= {"mod2", "mod3"}
    ev = AuditEvent.objects.filter(verb="moderation.decided", target_id=str(asset.pk), actor_type="user")
    assert {e.actor_label for e in ev} == {"mod2", "mod3"}


def test_grounds_written_before_the_fix_are_redacted_by_the_migration(people):
    """The data migration rewrites stored grounds that name a moderator."""
    import importlib

    from django.apps import apps as global_apps

    asset = make_asset(people["up"])
    d = Decision.objects.create(asset=asset, outcome="reject", reason_codes=["harassment/threat"], note="n",
                                moderator=people["mod2"], automated_detection=True, automated_decision=False,
                                ground="Moderator mod2: reject (harassment/threat) — n")
    auto = Decision.objects.create(asset=asset, outcome="approve", automated_detection=True,
                                   automated_decision=True, ground="Moderator-free automated ground")
    mig = importlib.import_module("apps.moderation.migrations.0005_separation_of_duties")
    mig.redact_grounds(global_apps, None)
    d.refresh_from_db()
    auto.refresh_from_db()
    assert d.ground == "A moderator: reject (harassment/threat) — n"
    assert auto.ground == "Moderator-free automated ground"


# ------------------------------------------------------------------ one open appeal per decision
def test_the_database_refuses_a_second_open_appeal_of_one_decision(people):
    asset = make_asset(people["up"])
    moderated(asset)
    decision = Decision.objects.get(asset=asset)
    Appeal.objects.create(decision=decision, appellant=people["up"], reason="one")
    with pytest.raises(IntegrityError), transaction.atomic():
        Appeal.objects.create(decision=decision, appellant=people["up"], reason="two")
    # a decided appeal does not block a new one
    Appeal.objects.filter(decision=decision).update(state=AppealState.DECIDED)
    Appeal.objects.create(decision=decision, appellant=people["up"], reason="three")


@pytest.mark.django_db(transaction=True)
def test_concurrent_appeals_of_one_decision_make_one_appeal_and_409s():
    from tests.moderation.test_console import seed_moderation

    seed_moderation()
    up = make_user("racer", "uploader")
    asset = make_asset(up)
    moderated(asset)
    decision = Decision.objects.get(asset=asset)
    results: list[int] = []

    def appeal(i: int) -> None:
        r = api(up).post("/api/v1/appeals/", {"decision": str(decision.pk), "reason": f"try {i}"}, format="json")
        results.append(r.status_code)
        if r.status_code == 409:
            assert r.json()["error"]["code"] == "duplicate"

    in_threads(appeal, [(i,) for i in range(6)])
    assert sorted(results) == [201] + [409] * 5
    assert Appeal.objects.filter(decision=decision, state=AppealState.OPEN).count() == 1
