"""Every moderation outcome end to end: real media through real workers, models and the policy engine."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management import call_command
from PIL import Image

from apps.assets.services import ingest_local_file
from apps.moderation.models import Decision, ReviewItem, Signal
from apps.moderation.taxonomy import DEFAULT_RULES
from apps.pipeline.models import StageRun
from tests import media
from tests.conftest import wait_for
from tests.moderation.helpers import api, make_user
from tests.pipeline.helpers import ingest_text, stage, wait_status

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

THREAT = ("The harbour festival opens on Saturday with boats, music and food stalls.\n\n"
          "Some visitor wrote: you are a stupid idiot and I will kill you.\n")


def near_duplicate(src: Path, dst: Path, size: tuple[int, int], quality: int) -> Path:
    """A resized JPEG copy: different bytes (a new asset), nearly the same PDQ hash."""
    Image.open(src).convert("RGB").resize(size, Image.Resampling.LANCZOS).save(dst, "JPEG", quality=quality)
    return dst


def ready(asset, timeout: float = 300):
    wait_status(asset, {"ready", "failed"}, timeout=timeout)
    assert asset.status == "ready", list(StageRun.objects.filter(asset=asset).values("stage", "status",
                                                                                       "error_message"))
    return asset


def moderation_state(asset, states: set[str], timeout: float = 120):
    def check():
        asset.refresh_from_db()
        return asset.moderation_state in states

    wait_for(check, timeout=timeout, what=f"moderation_state in {states}")
    return asset


def test_clean_image_and_video_are_auto_approved(start_worker, isolated_storage, tmp_path):
    start_worker(concurrency=3)
    image = media.make_image(tmp_path / "sign.png", "GARDEN PARTY", size=(800, 400))
    video = media.make_video(tmp_path / "clip.mp4", (("red", 1.0), ("checker:teal", 1.0)), size=(320, 240))
    assets = [ingest_local_file(image).asset, ingest_local_file(video).asset]
    for asset in assets:
        ready(asset)
        assert asset.moderation_state == "approved"
        d = Decision.objects.get(asset=asset)
        assert (d.outcome, d.automated_detection, d.automated_decision) == ("approve", True, True)
        assert d.ground == "No category reached its review threshold under default@v1."
        assert d.policy_version.label == "default@v1" and d.moderator is None
        assert not ReviewItem.objects.filter(asset=asset).exists()
        assert stage(asset, "moderate").engine_version == "policy@default-v1"


def test_text_with_threats_goes_to_review(start_worker, isolated_storage, tmp_path):
    start_worker()
    asset = ready(ingest_text(tmp_path, THREAT))
    assert asset.moderation_state == "in_review"
    item = ReviewItem.objects.get(asset=asset)
    assert item.state == "open" and "harassment/threat" in item.categories and item.severity > 2
    assert not Decision.objects.filter(asset=asset).exists()
    threat = Signal.objects.filter(asset=asset, category="harassment/threat").first()
    assert threat.source == "text" and "kill" in threat.evidence["matched"].lower()
    assert THREAT[threat.evidence["char_start"]:threat.evidence["char_end"]] == threat.evidence["matched"]
    listed = api(make_user("mod-e2e", "moderator")).get("/api/v1/review-items/").json()
    assert [r["asset"] for r in listed["results"]] == [str(asset.pk)]


def test_near_duplicate_of_a_block_bank_entry_is_blocked(start_worker, isolated_storage, tmp_path):
    start_worker(concurrency=3)
    original = media.make_image(tmp_path / "original.png", size=(640, 480), background="noise:3")
    first_copy = near_duplicate(original, tmp_path / "copy1.jpg", (480, 360), 80)
    a = ingest_local_file(original).asset
    b = ingest_local_file(first_copy).asset
    for asset in (a, b):
        ready(asset)
        assert asset.moderation_state == "approved"
    admin = api(make_user("bank-admin", "admin"))
    bank = admin.post("/api/v1/hash-banks/", {"name": "known-bad", "kind": "block"}, format="json").json()
    r = admin.post(f"/api/v1/hash-banks/{bank['id']}/add-asset", {"asset": str(a.pk), "label": "reported"},
                   format="json")
    assert r.status_code == 200 and r.json()["added"] == 1
    entry_id = r.json()["entries"][0]["id"]
    # the retroactive scan finds the copy already in the library and re-runs only its moderate stage
    moderation_state(b, {"blocked"})
    before = {r.stage: r.engine_version for r in StageRun.objects.filter(asset=b, current=True)}
    assert StageRun.objects.filter(asset=b, stage="moderate").count() == 1
    assert StageRun.objects.filter(asset=b).exclude(stage="moderate").filter(attempts__gt=1).count() == 0
    assert before["moderate"] == "policy@default-v1"
    a.refresh_from_db()
    assert a.moderation_state == "approved"  # the source itself is not re-moderated by its own entry
    # a new copy is blocked by its own pipeline
    c = ready(ingest_local_file(near_duplicate(original, tmp_path / "copy2.jpg", (400, 300), 70)).asset)
    for asset in (b, c):
        asset.refresh_from_db()
        assert asset.moderation_state == "blocked"
        sig = Signal.objects.get(asset=asset, category="known_bad/hash_match")
        assert sig.source == "hash" and sig.evidence["entry_id"] == entry_id and sig.evidence["bank"] == "known-bad"
        assert sig.evidence["distance"] <= 31 and sig.evidence["source_asset"] == str(a.pk)
        d = Decision.objects.filter(asset=asset).first()
        assert (d.outcome, d.automated_decision, d.reason_codes) == ("reject", True, ["known_bad/hash_match"])
        assert "known_bad/hash_match" in d.ground


def test_the_same_hash_in_an_allow_bank_suppresses_the_match(start_worker, isolated_storage, tmp_path):
    start_worker(concurrency=3)
    original = media.make_image(tmp_path / "meme.png", size=(640, 480), background="noise:11")
    x = ready(ingest_local_file(original).asset)
    admin = api(make_user("allow-admin", "admin"))
    block = admin.post("/api/v1/hash-banks/", {"name": "block", "kind": "block"}, format="json").json()
    allow = admin.post("/api/v1/hash-banks/", {"name": "allow", "kind": "allow"}, format="json").json()
    assert admin.post(f"/api/v1/hash-banks/{block['id']}/add-asset", {"asset": str(x.pk)},
                      format="json").json()["added"] == 1
    hex_ = admin.get(f"/api/v1/assets/{x.pk}/insights/").json()["hashes"][0]["hex"]
    r = admin.post(f"/api/v1/hash-banks/{allow['id']}/entries", {"hash_hex": hex_, "label": "newsworthy"},
                   format="json")
    assert r.status_code == 201
    y = ready(ingest_local_file(near_duplicate(original, tmp_path / "meme.jpg", (480, 360), 80)).asset)
    assert y.moderation_state == "approved"
    assert not Signal.objects.filter(asset=y, category="known_bad/hash_match").exists()
    # without the allow entry the same copy is blocked
    admin.patch(f"/api/v1/hash-bank-entries/{r.json()['id']}/", {"enabled": False}, format="json")
    resp = admin.post(f"/api/v1/assets/{y.pk}/reprocess", {"stages": ["moderate"], "mode": "all"}, format="json")
    assert resp.status_code == 202
    moderation_state(y, {"blocked"})
    assert Signal.objects.get(asset=y, category="known_bad/hash_match").evidence["bank"] == "block"


def test_policy_change_then_reprocess_stale_remoderates_only_moderate(start_worker, isolated_storage, tmp_path,
                                                                       capsys):
    start_worker()
    asset = ready(ingest_text(tmp_path, THREAT))
    assert asset.moderation_state == "in_review"
    snapshot = {r.key: (r.status, r.attempts, r.finished_at) for r in StageRun.objects.filter(asset=asset)}
    call_command("reprocess", "--stale", "--dry-run")
    assert "0 stage(s)" in capsys.readouterr().out
    # an admin relaxes the policy: insults and threats no longer go to review
    rules = {**DEFAULT_RULES, "categories": {**DEFAULT_RULES["categories"]}}
    for code in ("harassment/threat", "harassment/insult", "profanity"):
        rules["categories"][code] = {"review": 1.01, "block": 1.01}
    admin = api(make_user("policy-admin", "admin"))
    r = admin.post("/api/v1/policies/default/versions", {"rules": rules, "note": "relaxed"}, format="json")
    assert r.status_code == 201 and r.json()["label"] == "default@v2"
    call_command("reprocess", "--stale", "--dry-run")
    out = capsys.readouterr().out
    assert "1 stage(s) on 1 asset(s)" in out and f"{asset.pk}  moderate" in out
    call_command("reprocess", "--stale", "--stage", "moderate")
    moderation_state(asset, {"approved"})
    wait_for(lambda: stage(asset, "moderate").status == "done", what="moderate re-run")
    after = {r.key: (r.status, r.attempts, r.finished_at) for r in StageRun.objects.filter(asset=asset)}
    changed = {k for k in after if after[k] != snapshot.get(k)}
    assert changed == {f"{asset.pk}:moderate:policy@default-v2"}  # a new run; nothing else ran again
    assert not StageRun.objects.get(asset=asset, stage="moderate", engine_version="policy@default-v1").current
    assert stage(asset, "moderate").engine_version == "policy@default-v2"
    d = Decision.objects.filter(asset=asset).first()
    assert d.outcome == "approve" and d.automated_decision and "default@v2" in d.ground
    assert ReviewItem.objects.get(asset=asset).state == "decided"
    call_command("reprocess", "--stale", "--dry-run")
    assert "0 stage(s)" in capsys.readouterr().out
