"""The moderator console through Django's test client: roles, queue order and filters, claims,
decisions (CSRF, reasons), bulk actions, the evidence on the item page, dead-letter replay.

Browser tests (real Chromium) are in ``test_console_browser.py``; they reuse the builders here.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client
from django.utils import timezone
from PIL import Image

from apps.assets.models import MediaAsset
from apps.audit.models import AuditEvent
from apps.insights import models as im
from apps.moderation import actions, services
from apps.moderation.models import Category, Decision, HashBank, HashBankEntry, Policy, PolicyVersion, ReviewItem
from tests import media

PASSWORD = "console-pass-123"
THREAT_DOC = ("The harbour festival opens on Saturday with boats, music and food stalls.\n\n"
              "Some visitor wrote: you are a stupid idiot and I will kill you.\n")


# ------------------------------------------------------------------ builders shared with the browser tests
def seed_moderation() -> None:
    """The built-in taxonomy and default policy (the data migration's rows; a transactional test flushes them)."""
    from apps.moderation.taxonomy import DEFAULT_RULES, TAXONOMY

    for code, name, severity, description in TAXONOMY:
        Category.objects.update_or_create(code=code, defaults={"name": name, "severity": severity,
                                                               "description": description, "builtin": True})
    policy, _ = Policy.objects.get_or_create(name="default")
    if policy.active_version_id is None:
        policy.active_version = PolicyVersion.objects.create(policy=policy, number=1, rules=DEFAULT_RULES,
                                                             note="built-in default")
        policy.save()
    for role in ("uploader", "moderator", "admin"):
        Group.objects.get_or_create(name=role)


def make_user(name: str, role: str | None = "moderator") -> Any:
    user = get_user_model().objects.create_user(name, password=PASSWORD)
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user


def client_for(user: Any, *, csrf: bool = False) -> Client:
    c = Client(enforce_csrf_checks=csrf)
    c.force_login(user)
    return c


def csrf_post(c: Client, url: str, data: dict[str, Any], page: str | None = None, **kw: Any) -> Any:
    """POST like a browser: fetch a page for the CSRF cookie, send the token with the form."""
    c.get(page or "/console/review/")
    token = c.cookies["csrftoken"].value
    return c.post(url, {**data, "csrfmiddlewaretoken": token}, **kw)


def _sha() -> str:
    return hashlib.sha256(uuid.uuid4().bytes).hexdigest()


def text_asset(text: str = THREAT_DOC, title: str = "visitor-note.txt", *, flags: bool = True) -> MediaAsset:
    """A processed text asset: its extracted document in storage and lexicon flags over it."""
    sha = _sha()
    asset = MediaAsset.objects.create(kind="text", sha256=sha, size=len(text), mime_type="text/plain",
                                      storage_key=f"blobs/{sha}", title=title, status="ready")
    key = f"derived/{sha[:2]}/{sha}/text.json"
    default_storage.save(key, ContentFile(json.dumps({"text": text, "segments": []}).encode()))
    if flags:
        for word, category, score in (("stupid idiot", "insult", 0.82), ("I will kill you", "threat", 0.93)):
            start = text.index(word)
            im.TextSpanFlag.objects.create(asset=asset, stage="text_flags", engine="lexicon", engine_version="t@1",
                                           source="text", category=category, score=score, char_start=start,
                                           char_end=start + len(word), matched=word, ref_id=None)
    return asset


def review_for(asset: MediaAsset) -> ReviewItem:
    services.moderate_asset(asset)
    return ReviewItem.objects.get(asset=asset, state__in=services.PENDING)


def _jpeg(pattern: str, size: tuple[int, int] = (320, 180)) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(media.pattern_array(pattern, size)).save(buf, "JPEG", quality=80)
    return buf.getvalue()


VIDEO_FRAMES = ((0, 0.0, "checker:teal"), (1, 3.0, "noise:7"), (2, 6.0, "gradient"), (3, 9.0, "bars"))
TRANSCRIPT = ((0.0, 3.0, "Welcome to the harbour tour, the boats leave at nine."),
              (3.0, 6.5, "If you come back here again I will kill you."),
              (6.5, 9.0, "Enjoy the rest of your day."))


def add_video_insights(asset: MediaAsset, *, keyframes: bool = True, text: bool = True, visual: bool = True) -> None:
    """Insight rows as the stages write them: keyframes, transcript, OCR, text flags, nudity/objects, NSFW."""
    kw = {"asset": asset, "engine_version": "console-test@1"}
    if keyframes:
        for index, t, pattern in VIDEO_FRAMES:
            im.Keyframe.objects.create(**kw, stage="keyframes", engine="pyav", index=index, frame_index=int(t * 25),
                                       scene_index=index, time=t, start=t, end=t + 3, width=1280, height=720,
                                       storage_key=f"kf/{asset.sha256}/{index}.jpg", thumbnail=_jpeg(pattern))
    if text:
        for i, (start, end, words) in enumerate(TRANSCRIPT):
            seg = im.TranscriptSegment.objects.create(**kw, stage="transcribe", engine="whisper", index=i, text=words,
                                                      language="en", confidence=0.9, start=start, end=end)
            if "kill" in words:
                a = words.index("I will kill you")
                im.TextSpanFlag.objects.create(**kw, stage="text_flags", engine="lexicon", source="transcript",
                                               category="threat", score=0.93, char_start=a, char_end=a + 15,
                                               matched="I will kill you", ref_id=seg.pk, start=start, end=end)
        ocr = im.OcrText.objects.create(**kw, stage="ocr", engine="tesseract", text="YOU STUPID IDIOT", confidence=88,
                                        keyframe_index=2, start=6.0, end=9.0)
        im.TextSpanFlag.objects.create(**kw, stage="text_flags", engine="lexicon", source="ocr", category="insult",
                                       score=0.82, char_start=4, char_end=16, matched="STUPID IDIOT", ref_id=ocr.pk,
                                       start=6.0, end=9.0)
    if visual:
        # what NudeNet / a weapons detector / open_nsfw would report on frames 1 and 3
        im.NsfwScore.objects.create(**kw, stage="nsfw", engine="open_nsfw", score=0.74, keyframe_index=1,
                                    start=3.0, end=3.0)
        for index, detector, label, conf, box in (
                (1, "nudity", "FEMALE_BREAST_EXPOSED", 0.66, [0.36, 0.30, 0.58, 0.70]),
                (1, "nudity", "FACE_FEMALE", 0.91, [0.40, 0.05, 0.55, 0.28]),
                (3, "objects", "knife", 0.81, [0.12, 0.42, 0.46, 0.63])):
            im.Detection.objects.create(**kw, stage="detect", engine=detector, detector=detector, label=label,
                                        confidence=conf, keyframe_index=index, box=box,
                                        start=VIDEO_FRAMES[index][1], end=VIDEO_FRAMES[index][1])


def bank_match(asset: MediaAsset, keyframe_index: int, source: MediaAsset, source_frame: int | None = None) -> None:
    """A block bank holding the source asset's hash, 8 bits away from the asset's frame hash."""
    import random

    bits = "".join(random.Random(str(asset.pk)).choice("01") for _ in range(256))
    near = "".join(("1" if b == "0" else "0") if i < 8 else b for i, b in enumerate(bits))
    kw = {"stage": "hash", "engine": "pdq", "engine_version": "pdq@1", "algorithm": "pdq", "quality": 100}
    im.PerceptualHash.objects.create(asset=asset, hash=bits, keyframe_index=keyframe_index, **kw)
    im.PerceptualHash.objects.create(asset=source, hash=near, keyframe_index=source_frame, **kw)
    bank, _ = HashBank.objects.get_or_create(name="known-bad", defaults={"kind": HashBank.Kind.BLOCK})
    HashBankEntry.objects.create(bank=bank, hash=near, quality=100, source_asset=source, label="case 2291")


def video_item(title: str = "harbour-tour.mp4", asset: MediaAsset | None = None) -> ReviewItem:
    """A video under review with every kind of evidence the item page shows."""
    if asset is None:
        sha = _sha()
        asset = MediaAsset.objects.create(kind="video", sha256=sha, size=10_000, mime_type="video/mp4",
                                          storage_key=f"blobs/{sha}", title=title, duration=12.0, width=1280,
                                          height=720, status="ready")
        source = MediaAsset.objects.create(kind="image", sha256=_sha(), size=100, mime_type="image/jpeg",
                                           storage_key="blobs/x", title="banked-original.jpg", status="ready")
        add_video_insights(asset)
        bank_match(asset, 2, source)
    review_hash_matches()
    return review_for(asset)


def review_hash_matches() -> None:
    """A policy under which a hash match goes to a human instead of being blocked outright."""
    pv = services.active_policy_version()
    if pv.rules["categories"]["known_bad/hash_match"]["block"] <= 1:
        rules = json.loads(json.dumps(pv.rules))
        rules["categories"]["known_bad/hash_match"] = {"review": 0.5, "block": 1.01}
        actions.new_policy_version(rules, user=None, note="hash matches go to review")


# ------------------------------------------------------------------ fixtures
@pytest.fixture(autouse=True)
def _seeded(db: Any) -> None:
    seed_moderation()


@pytest.fixture
def mod() -> Any:
    return make_user("mia", "moderator")


@pytest.fixture
def mod2() -> Any:
    return make_user("noah", "moderator")


# ------------------------------------------------------------------ access
def test_review_pages_need_the_moderator_role(isolated_storage, mod):
    item = review_for(text_asset())
    urls = ["/console/review/", f"/console/review/items/{item.pk}/"]
    anon = Client()
    for url in urls:
        r = anon.get(url)
        assert r.status_code == 302 and r.url.startswith("/accounts/login/")
    uploader = client_for(make_user("ulla", "uploader"))
    for url in urls:
        assert uploader.get(url).status_code == 403
    for url in (f"/console/review/items/{item.pk}/decide/", f"/console/review/items/{item.pk}/release/",
                f"/console/review/items/{item.pk}/renew/", "/console/review/bulk/"):
        assert uploader.post(url, {"outcome": "approve", "items": [str(item.pk)]}).status_code == 403
    item.refresh_from_db()
    assert item.state == "open" and not Decision.objects.filter(asset=item.asset, automated_decision=False).exists()
    # nav link only for moderators
    assert "/console/review/" not in uploader.get("/console/").content.decode()
    moderator = client_for(mod)
    assert 'href="/console/review/"' in moderator.get("/console/").content.decode()
    assert moderator.get(urls[0]).status_code == 200
    assert client_for(make_user("ada", "admin")).get(urls[1]).status_code == 200


# ------------------------------------------------------------------ queue
def _queue_titles(c: Client, query: str = "") -> list[str]:
    html = c.get(f"/console/review/{query}").content.decode()
    return re.findall(r'<a class="open" href="[^"]+">([^<]+)</a>', html)


def test_queue_is_ordered_by_severity_plus_age_and_filters_with_counts(isolated_storage, mod):
    items = {}
    for title, hours in (("fresh-threat.txt", 0), ("old-threat.txt", 72), ("day-old-threat.txt", 12)):
        items[title] = review_for(text_asset(title=title))
        ReviewItem.objects.filter(pk=items[title].pk).update(created_at=timezone.now() - timedelta(hours=hours))
    insult = text_asset(
        "you are a stupid idiot, a complete and utter idiot, such an idiot.", title="insult-only.txt", flags=False)
    im.TextSpanFlag.objects.create(asset=insult, stage="text_flags", engine="lexicon", engine_version="t@1",
                                   source="text", category="insult", score=0.8, char_start=10, char_end=22,
                                   matched="stupid idiot")
    items["insult-only.txt"] = review_for(insult)
    video = video_item()
    c = client_for(mod)
    # severity 5 × 0.93 ≈ 4.65 per threat; +3 days, +0.5 day; the insult is severity 2 × 0.8; the video 5 (+0)
    assert _queue_titles(c) == ["old-threat.txt", "day-old-threat.txt", "harbour-tour.mp4", "fresh-threat.txt",
                                "insult-only.txt"]
    assert _queue_titles(c, "?category=harassment/insult") == ["old-threat.txt", "day-old-threat.txt",
                                                               "harbour-tour.mp4", "fresh-threat.txt",
                                                               "insult-only.txt"]
    assert _queue_titles(c, "?category=harassment/threat&kind=text") == [
        "old-threat.txt", "day-old-threat.txt", "fresh-threat.txt"]
    assert _queue_titles(c, "?kind=video") == ["harbour-tour.mp4"]
    html = c.get("/console/review/?kind=text").content.decode()
    assert re.search(r'data-state="pending">Pending <span class="count">4</span>', html)
    assert re.search(r'data-state="decided">Decided <span class="count">0</span>', html)
    assert "harassment/threat (3)" in html and ">video (1)<" in html and ">text (4)<" in html
    assert "sexual/explicit_nudity (0)" in html  # counts of the text-kind filter
    # a decided item leaves the pending list and shows under "decided"
    actions.claim_review(video.pk, mod)
    actions.decide_review(video.pk, mod, "approve")
    assert "harbour-tour.mp4" not in _queue_titles(c)
    assert _queue_titles(c, "?state=decided") == ["harbour-tour.mp4"]


# ------------------------------------------------------------------ claims
def claim(c: Client, item: ReviewItem, **kw: Any) -> Any:
    """Press the page's Claim button (a CSRF-protected POST)."""
    url = f"/console/review/items/{item.pk}/"
    return csrf_post(c, f"{url}claim/", kw, page=url)


def test_opening_an_item_does_not_claim_it(isolated_storage, mod):
    """Link previews and prefetchers GET pages: only the explicit Claim action (POST) claims."""
    item = review_for(text_asset())
    c = client_for(mod, csrf=True)
    html = c.get(f"/console/review/items/{item.pk}/").content.decode()
    item.refresh_from_db()
    assert item.state == "open" and item.claimed_by is None
    assert not AuditEvent.objects.filter(verb="review.claimed").exists()
    assert f'action="/console/review/items/{item.pk}/claim/"' in html and "Claim" in html
    assert c.get(f"/console/review/items/{item.pk}/claim/").status_code == 405  # GET never claims
    assert c.post(f"/console/review/items/{item.pk}/claim/").status_code == 403  # no CSRF token
    assert ReviewItem.objects.get(pk=item.pk).state == "open"


def test_claiming_an_item_holds_it_and_a_second_moderator_sees_it_held(isolated_storage, mod, mod2):
    item = review_for(text_asset())
    first = client_for(mod)
    r = claim(first, item)
    assert r.status_code == 302 and r.url == f"/console/review/items/{item.pk}/"
    html = first.get(r.url).content.decode()
    item.refresh_from_db()
    assert item.state == "claimed" and item.claimed_by == mod and item.claim_expires_at > timezone.now()
    assert "You are reviewing this item" in html and '<fieldset >' in html.replace("<fieldset  >", "<fieldset >")
    assert AuditEvent.objects.filter(verb="review.claimed", target_id=str(item.asset_id), actor_label="mia").exists()

    second = client_for(mod2)
    html2 = second.get(f"/console/review/items/{item.pk}/").content.decode()
    assert '<b class="holder">mia</b> is reviewing this item until' in html2
    assert "<fieldset disabled>" in html2 and 'data-mine="0"' in html2
    r = claim(second, item)
    assert "Not claimed: the item is claimed by another moderator" in second.get(r.url).content.decode()
    item.refresh_from_db()
    assert item.claimed_by == mod  # still held by the first
    # the second moderator's decision is refused, and nothing changes
    r = csrf_post(second, f"/console/review/items/{item.pk}/decide/",
                  {"outcome": "reject", "reasons": ["harassment/threat"]})
    assert r.status_code == 302 and ReviewItem.objects.get(pk=item.pk).state == "claimed"
    assert not Decision.objects.filter(moderator=mod2).exists()
    assert "Not decided" in second.get(r.url).content.decode()

    # release (the page's beacon on leaving) gives it back; then the second one can claim it
    r = csrf_post(first, f"/console/review/items/{item.pk}/release/", {"beacon": "1"})
    assert r.status_code == 204 and ReviewItem.objects.get(pk=item.pk).state == "open"
    # audited as from the API: one record, naming the moderator who let it go
    [ev] = AuditEvent.objects.filter(verb="review.released", target_id=str(item.asset_id))
    assert (ev.actor_label, ev.payload["review_item"]) == ("mia", str(item.pk))
    second.get(f"/console/review/items/{item.pk}/")
    assert ReviewItem.objects.get(pk=item.pk).state == "open"
    claim(second, item)
    assert ReviewItem.objects.get(pk=item.pk).claimed_by == mod2
    # an expired claim is free for the taking
    ReviewItem.objects.filter(pk=item.pk).update(claim_expires_at=timezone.now() - timedelta(seconds=1))
    claim(first, item)
    assert ReviewItem.objects.get(pk=item.pk).claimed_by == mod


def test_renew_extends_the_claim_and_reports_a_lost_one(isolated_storage, mod, mod2):
    item = review_for(text_asset())
    c = client_for(mod)
    claim(c, item)
    ReviewItem.objects.filter(pk=item.pk).update(claim_expires_at=timezone.now() + timedelta(seconds=20))
    r = csrf_post(c, f"/console/review/items/{item.pk}/renew/", {}, HTTP_HX_REQUEST="true")
    assert r.status_code == 200 and "You are reviewing this item" in r.content.decode()
    assert ReviewItem.objects.get(pk=item.pk).claim_expires_at > timezone.now() + timedelta(minutes=5)
    actions.release_review(item.pk, mod)
    # renewing never claims an item that is not ours any more
    r = csrf_post(c, f"/console/review/items/{item.pk}/renew/", {}, HTTP_HX_REQUEST="true")
    assert ReviewItem.objects.get(pk=item.pk).state == "open" and "You are reviewing" not in r.content.decode()
    actions.claim_review(item.pk, mod2)
    r = csrf_post(c, f"/console/review/items/{item.pk}/renew/", {}, HTTP_HX_REQUEST="true")
    assert "noah" in r.content.decode() and "You can look, but not decide" in r.content.decode()


# ------------------------------------------------------------------ decisions
def test_decisions_need_csrf_and_a_reason_to_reject(isolated_storage, mod):
    first, second = review_for(text_asset(title="a.txt")), review_for(text_asset(title="b.txt"))
    c = client_for(mod, csrf=True)
    c.get(f"/console/review/items/{first.pk}/")
    assert c.post(f"/console/review/items/{first.pk}/decide/", {"outcome": "approve"}).status_code == 403

    r = csrf_post(c, f"/console/review/items/{first.pk}/decide/", {"outcome": "reject"},
                  page=f"/console/review/items/{first.pk}/")
    assert r.status_code == 302 and r.url == f"/console/review/items/{first.pk}/"
    assert ReviewItem.objects.get(pk=first.pk).state == "open"  # a refused decision claims nothing
    assert "a rejection needs at least one reason" in c.get(r.url).content.decode()

    r = csrf_post(c, f"/console/review/items/{first.pk}/decide/",
                  {"outcome": "reject", "reasons": ["harassment/threat", "harassment/insult"], "note": "clear threat"},
                  page=f"/console/review/items/{first.pk}/")
    d = Decision.objects.get(review_item=first)
    assert (d.outcome, d.moderator, d.reason_codes, d.note, d.automated_decision) == (
        "reject", mod, ["harassment/threat", "harassment/insult"], "clear threat", False)
    assert ReviewItem.objects.get(pk=first.pk).state == "decided"
    assert MediaAsset.objects.get(pk=first.asset_id).moderation_state == "blocked"
    ev = AuditEvent.objects.get(verb="moderation.decided", target_id=str(first.asset_id))
    assert (ev.actor_type, ev.actor_label, ev.payload["outcome"]) == ("user", "mia", "reject")
    # on to the next open item of the queue
    assert r.url == f"/console/review/items/{second.pk}/"
    page = c.get(r.url).content.decode()
    assert "Rejected “a.txt” (harassment/threat, harassment/insult)" in page

    # approve records no reason codes; with nothing left the queue is next
    r = csrf_post(c, f"/console/review/items/{second.pk}/decide/",
                  {"outcome": "approve", "reasons": ["harassment/threat"]}, page=r.url)
    d2 = Decision.objects.get(review_item=second)
    assert (d2.outcome, d2.reason_codes) == ("approve", []) and r.url == "/console/review/"


def test_escalate_puts_the_item_on_top_for_a_senior(isolated_storage, mod, mod2):
    low = text_asset("what an idiot", title="low.txt", flags=False)
    im.TextSpanFlag.objects.create(asset=low, stage="text_flags", engine="lexicon", engine_version="t@1",
                                   source="text", category="insult", score=0.75, char_start=8, char_end=13,
                                   matched="idiot")
    low_item = review_for(low)
    high_item = review_for(text_asset(title="high.txt"))
    c = client_for(mod)
    assert _queue_titles(c) == ["high.txt", "low.txt"]
    c.get(f"/console/review/items/{low_item.pk}/")
    csrf_post(c, f"/console/review/items/{low_item.pk}/decide/",
              {"outcome": "escalate", "reasons": ["harassment/insult"], "note": "context?"})
    low_item.refresh_from_db()
    assert low_item.state == "escalated" and low_item.severity > 10
    assert _queue_titles(client_for(mod2)) == ["low.txt", "high.txt"]
    assert _queue_titles(c, "?state=escalated") == ["low.txt"]
    assert high_item.pk


def test_next_and_previous_follow_the_filtered_queue(isolated_storage, mod):
    a = review_for(text_asset(title="a.txt"))
    b = review_for(text_asset(title="b.txt"))
    ReviewItem.objects.filter(pk=a.pk).update(created_at=timezone.now() - timedelta(days=1))
    v = video_item()
    c = client_for(mod)
    assert _queue_titles(c) == ["a.txt", "harbour-tour.mp4", "b.txt"]
    html = c.get(f"/console/review/items/{v.pk}/").content.decode()
    assert f'data-next="/console/review/items/{b.pk}/"' in html
    assert f'data-prev="/console/review/items/{a.pk}/"' in html and "2 of 3" in html
    html = c.get(f"/console/review/items/{a.pk}/?kind=text").content.decode()
    assert f'data-next="/console/review/items/{b.pk}/?kind=text"' in html and 'data-prev=""' in html


def test_bulk_actions_claim_and_decide_each_item_and_skip_held_ones(isolated_storage, mod, mod2):
    items = [review_for(text_asset(title=f"bulk-{i}.txt")) for i in range(3)]
    actions.claim_review(items[2].pk, mod2)  # someone else is looking at this one
    c = client_for(mod, csrf=True)
    ids = [str(i.pk) for i in items]
    r = csrf_post(c, "/console/review/bulk/", {"items": ids, "outcome": "reject"})
    assert r.status_code == 302 and not Decision.objects.filter(moderator=mod).exists()
    assert "needs a reason" in c.get(r.url).content.decode()

    r = csrf_post(c, "/console/review/bulk/", {"items": ids, "outcome": "reject", "reasons": "harassment/threat"})
    page = c.get(r.url).content.decode()
    assert "Rejected 2 items (harassment/threat)." in page and "Skipped 1" in page
    decided = Decision.objects.filter(moderator=mod)
    assert {d.review_item_id for d in decided} == {items[0].pk, items[1].pk}
    assert all(d.reason_codes == ["harassment/threat"] for d in decided)
    assert ReviewItem.objects.get(pk=items[2].pk).claimed_by == mod2
    assert AuditEvent.objects.filter(verb="moderation.decided", actor_label="mia").count() == 2
    # the held item offers no checkbox to the other moderator
    html = c.get("/console/review/").content.decode()
    assert f'value="{items[2].pk}"' not in html

    actions.release_review(items[2].pk, mod2)
    r = csrf_post(c, "/console/review/bulk/", {"items": [ids[2]], "outcome": "approve"})
    assert Decision.objects.get(review_item=items[2]).outcome == "approve"


# ------------------------------------------------------------------ evidence on the item page
def test_item_page_shows_video_evidence(isolated_storage, mod):
    item = video_item()
    asset = item.asset
    html = client_for(mod).get(f"/console/review/items/{item.pk}/").content.decode()
    # the player streams the content API; markers seek to flagged ranges
    assert f'<video id="player" controls preload="metadata" src="/api/v1/assets/{asset.pk}/content">' in html
    markers = re.findall(r'<a class="marker" href="[^"]+#t=([\d.]+),([\d.]+)" data-seek="([\d.]+)"', html)
    assert ("3.0", "6.5", "3.0") in markers  # the threat in the transcript
    assert ("6.0", "9.0", "6.0") in markers  # the insult on screen
    assert re.search(r'class="marker"[^>]*style="left:25.0%;width:29.16', html)
    # keyframes: thumbnails from the API; frame 1 (nudity signals) blurred; boxes drawn
    assert all(f"/api/v1/assets/{asset.pk}/keyframes/{i}.jpg" in html for i in range(4))
    frames = {idx: cls for cls, idx in re.findall(r'<figure class="frame([^"]*)" data-seek="[^"]+" data-frame="(\d)"',
                                                  html)}
    assert "blurred" in frames["1"] and "blurred" not in frames["0"] and "blurred" not in frames["3"]
    assert "flagged" in frames["3"] and "flagged" not in frames["0"]
    assert 'class="box hit" style="left:36.0%;top:30.0%;width:22.0%;height:40.0%' in html
    assert "knife 0.81" in html and "face_female 0.91" in html
    assert "Sexual content flagged — click to show" in html  # the player starts blurred too
    # transcript and OCR with the flagged spans highlighted
    assert re.search(r'<mark class="flag" id="hit-\d+" style="--c:#ef6c00" title="harassment/threat 0.93">'
                     r"I will kill you</mark>", html)
    assert re.search(r'YOU <mark class="flag" id="hit-\d+" style="--c:#ef6c00" title="harassment/insult 0.82">'
                     r"STUPID IDIOT</mark>", html)
    # the hash match side by side: this frame and the banked source
    source = HashBankEntry.objects.get().source_asset
    assert f"/api/v1/assets/{asset.pk}/keyframes/2.jpg" in html
    assert f"/api/v1/assets/{source.pk}/content" in html and "known-bad" in html and "distance 8 / 256" in html
    # the reason picker preselects the item's categories; history lists the asset's events
    for code in item.categories:
        assert re.search(rf'value="{re.escape(code)}" checked', html)
    assert "review.created" in html and "policy-engine" in html


def test_item_page_highlights_flagged_spans_in_a_text_document(isolated_storage, mod):
    item = review_for(text_asset())
    html = client_for(mod).get(f"/console/review/items/{item.pk}/").content.decode()
    assert re.search(r'you are a <mark class="flag" id="hit-1"[^>]*>stupid idiot</mark> and '
                     r'<mark class="flag" id="hit-2"[^>]*>I will kill you</mark>', html)
    assert '<a href="#hit-2" class="hit-link">' in html
    assert "<video" not in html


def test_highlight_handles_overlapping_spans():
    from apps.moderation.evidence import Counter, highlight

    spans = [{"start": 0, "end": 9, "code": "a", "score": 0.5, "color": "#1"},
             {"start": 4, "end": 14, "code": "b", "score": 0.9, "color": "#2"}]
    counter = Counter()
    pieces = highlight("kill you now ok", spans, counter)
    assert [(p["text"], [s["code"] for s in p["flags"]]) for p in pieces] == [
        ("kill", ["a"]), (" you ", ["a", "b"]), ("now o", ["b"]), ("k", [])]
    assert pieces[1]["color"] == "#2" and pieces[1]["title"] == "a 0.50; b 0.90"
    assert [h["code"] for h in counter.hits] == ["a", "b"] and pieces[0]["anchor"] == "hit-1"
    assert pieces[1]["anchor"] == "hit-2" and pieces[2]["anchor"] == ""
    assert highlight("", [], counter) == []


# ------------------------------------------------------------------ library, jobs, dead letters
def _dead_stage(asset: MediaAsset) -> Any:
    from apps.pipeline.models import DeadLetter, Job, StageRun

    job = Job.objects.create(asset=asset, plan_version="t", status="failed", finished_at=timezone.now())
    done = StageRun.objects.create(job=job, asset=asset, stage="text_extract", key=f"{asset.pk}:te", engine="e",
                                   engine_version="1", status="done", queue="cpu")
    run = StageRun.objects.create(job=job, asset=asset, stage="language", key=f"{asset.pk}:lang", engine="e",
                                  engine_version="1", status="dead", attempts=3, queue="cpu", needs=["text_extract"],
                                  error_class="RuntimeError", error_message="boom")
    assert done.pk
    return DeadLetter.objects.create(stage_run=run, task_name="mediaintel.stage.language", args=[run.pk],
                                     error_class="RuntimeError", error="boom", traceback="Traceback…")


def test_dead_letters_replay_is_admin_only_and_audited(isolated_storage, mod, monkeypatch):
    from apps.pipeline import services as pipeline

    sent: list[Any] = []
    monkeypatch.setattr(pipeline, "send", lambda *a, **k: sent.append(a))
    asset = text_asset(flags=False)
    dl = _dead_stage(asset)
    m = client_for(mod, csrf=True)
    html = m.get("/console/dead-letters/").content.decode()
    assert "boom" in html and "dlq-replay" not in html
    assert csrf_post(m, f"/console/dead-letters/{dl.pk}/replay/", {}).status_code == 403
    assert client_for(make_user("ulla", "uploader")).get("/console/dead-letters/").status_code == 403

    admin = client_for(make_user("ada", "admin"), csrf=True)
    html = admin.get("/console/dead-letters/").content.decode()
    assert f'action="/console/dead-letters/{dl.pk}/replay/"' in html
    assert admin.post(f"/console/dead-letters/{dl.pk}/replay/").status_code == 403  # no CSRF token
    r = csrf_post(admin, f"/console/dead-letters/{dl.pk}/replay/", {}, page="/console/dead-letters/")
    assert r.status_code == 302
    dl.refresh_from_db()
    assert dl.replayed_at is not None and dl.stage_run.status in ("pending", "queued")
    ev = AuditEvent.objects.get(verb="dlq.replayed")
    assert (ev.actor_label, ev.target_id, ev.payload["sent"]) == ("ada", str(dl.pk), True)
    assert "Replaying language" in admin.get(r.url).content.decode()
    assert "Nothing in the dead-letter list" in admin.get("/console/dead-letters/").content.decode()
    # the asset's history shows the replay
    html = admin.get(f"/console/assets/{asset.pk}/").content.decode()
    assert "dlq.replayed" in html

    dl2 = _dead_stage(text_asset(flags=False))
    csrf_post(admin, f"/console/dead-letters/{dl2.pk}/discard/", {"next": f"/console/assets/{asset.pk}/"})
    dl2.refresh_from_db()
    assert dl2.discarded and AuditEvent.objects.filter(verb="dlq.discarded", actor_label="ada").exists()


def test_library_jobs_and_asset_pages_show_stage_progress(isolated_storage, mod):
    asset = text_asset(flags=False, title="progress.txt")
    _dead_stage(asset)
    item = review_for(text_asset(title="in-review.txt"))
    c = client_for(mod)
    html = c.get("/console/").content.decode()
    assert 'aria-valuemax="2" aria-valuenow="1"' in html and "1/2" in html
    assert f'href="/console/review/items/{item.pk}/">review →' in html
    assert "in-review.txt" in c.get("/console/?moderation=in_review").content.decode()
    assert "progress.txt" not in c.get("/console/?moderation=in_review").content.decode()
    html = c.get("/console/jobs/").content.decode()
    assert "1/2" in html and ">language<" in html
    assert "progress.txt" not in c.get("/console/jobs/?status=done").content.decode()
    html = c.get(f"/console/assets/{item.asset_id}/").content.decode()
    assert "review.created" in html and f"/console/review/items/{item.pk}/" in html
    # an uploader sees their own asset without the moderation panel
    owner = make_user("ulla", "uploader")
    MediaAsset.objects.filter(pk=asset.pk).update(uploader=owner)
    html = client_for(owner).get(f"/console/assets/{asset.pk}/").content.decode()
    assert "progress.txt" in html and "History" not in html
