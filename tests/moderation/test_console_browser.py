"""The moderator console in real Chromium (Debian's /usr/bin/chromium through PyPI playwright), against
``live_server`` and, where the item comes from the pipeline, real worker processes.

Never run ``playwright install``: the browser is the system one (``make install`` puts it there).
Screenshots go to ``var/screenshots/``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from apps.assets.models import MediaAsset
from apps.assets.services import ingest_local_file
from apps.audit.models import AuditEvent
from apps.insights import models as im
from apps.moderation import actions, services
from apps.moderation.models import Decision, HashBank, ReviewItem
from apps.pipeline.models import DeadLetter, StageRun
from tests import media
from tests.conftest import ROOT, wait_for
from tests.moderation.test_console import (
    PASSWORD,
    THREAT_DOC,
    make_user,
    review_for,
    review_hash_matches,
    seed_moderation,
    text_asset,
)
from tests.pipeline.helpers import ingest_text, wait_status

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--autoplay-policy=no-user-gesture-required"]
SHOTS = ROOT / "var" / "screenshots"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # fail, don't skip: `make install` installs chromium (it is in APT_PACKAGES)
    assert CHROMIUM.exists(), "Debian's chromium is missing: run `make install` (never `playwright install`)"
    from playwright.sync_api import sync_playwright

    # playwright's sync API keeps an event loop on this thread; the ORM calls between browser steps are
    # plain synchronous code, so Django's async-safety guard is told so for the life of the browser
    with pytest.MonkeyPatch.context() as mp, sync_playwright() as p:
        mp.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "1")
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


@pytest.fixture(autouse=True)
def _seeded(transactional_db: Any) -> None:
    seed_moderation()


def login(browser: Any, live_server: Any, username: str) -> Any:
    """A fresh browser context logged in through the login form; returns its page."""
    ctx = browser.new_context(viewport={"width": 1440, "height": 900})
    page = ctx.new_page()
    page.set_default_timeout(20_000)
    page.goto(f"{live_server.url}/accounts/login/?next=/console/review/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/console/review/")
    return page


def test_moderator_rejects_a_pipeline_review_item_with_one_key(browser, live_server, start_worker, isolated_storage,
                                                               tmp_path):
    start_worker()
    asset = ingest_text(tmp_path, THREAT_DOC, name="visitor-note.txt")
    wait_status(asset, {"ready", "failed"})
    item = wait_for(lambda: ReviewItem.objects.filter(asset=asset, state="open").first(), what="a review item")
    assert "harassment/threat" in item.categories
    make_user("mia")

    page = login(browser, live_server, "mia")
    row = page.locator("tr.qrow", has_text="visitor-note")
    assert row.count() == 1
    row.locator("a.open").click()
    page.wait_for_url(f"**/console/review/items/{item.pk}/")
    # opening the page claims nothing; `c` (the Claim button) does
    assert "Nobody is reviewing this item" in page.locator("#claim-status").inner_text()
    assert ReviewItem.objects.get(pk=item.pk).state == "open"
    page.locator("body").click(position={"x": 5, "y": 300})
    page.keyboard.press("c")
    page.wait_for_selector("#claim-status.claim-mine")
    assert "You are reviewing this item" in page.locator("#claim-status").inner_text()
    item.refresh_from_db()
    assert item.state == "claimed" and item.claimed_by.username == "mia"
    # the flagged spans of the document are highlighted
    assert "kill you" in " ".join(page.locator(".doc mark.flag").all_inner_texts())
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "review_item_text.png"))

    # the item's categories come preselected; with none chosen, `r` asks for a reason and decides nothing
    preselected = page.locator("input[name=reasons]:checked").evaluate_all("els => els.map(e => e.value)")
    assert sorted(preselected) == sorted(item.categories)
    for code in preselected:
        page.locator(f"input[name=reasons][value='{code}']").uncheck()
    page.locator("body").click(position={"x": 5, "y": 300})  # focus off the checkbox, as a moderator would
    page.keyboard.press("r")
    assert page.locator("#decide-error").is_visible()
    assert "at least one reason" in page.locator("#decide-error").inner_text()
    assert not Decision.objects.filter(asset=asset, automated_decision=False).exists()

    page.keyboard.press("1")  # toggles the first reason: the item's top category
    first = page.locator(".reason[data-key='1'] input").get_attribute("value")
    assert first == item.categories[0]
    page.keyboard.press("r")
    page.wait_for_url(f"{live_server.url}/console/review/")  # nothing else to review
    assert "Rejected “visitor-note”" in page.locator(".messages").inner_text()

    d = Decision.objects.get(asset=asset, automated_decision=False)
    assert (d.outcome, d.moderator.username, d.reason_codes, d.review_item_id) == ("reject", "mia", [first], item.pk)
    item.refresh_from_db()
    asset.refresh_from_db()
    assert item.state == "decided" and item.decided_at and asset.moderation_state == "blocked"
    ev = AuditEvent.objects.get(verb="moderation.decided", target_id=str(asset.pk), actor_type="user")
    assert ev.actor_label == "mia" and ev.payload["reason_codes"] == [first]
    page.context.close()


def test_second_moderator_sees_the_item_held_until_the_first_leaves(browser, live_server, isolated_storage):
    item = review_for(text_asset(title="held.txt"))
    make_user("mia")
    make_user("noah")
    url = f"/console/review/items/{item.pk}/"

    a = login(browser, live_server, "mia")
    a.goto(live_server.url + url)
    a.click("#claim-status [data-claim]")
    a.wait_for_selector("#claim-status.claim-mine")
    assert "You are reviewing this item" in a.locator("#claim-status").inner_text()

    b = login(browser, live_server, "noah")
    assert "mia" in b.locator("tr.qrow", has_text="held.txt").inner_text()  # the queue shows who holds it
    b.goto(live_server.url + url)
    banner = b.locator("#claim-status").inner_text()
    assert "mia is reviewing this item until" in banner and "You can look, but not decide" in banner
    assert b.locator("button[value=approve]").is_disabled()
    b.keyboard.press("a")
    b.wait_for_timeout(500)
    item.refresh_from_db()
    assert item.claimed_by.username == "mia" and not Decision.objects.filter(review_item=item).exists()

    # the first moderator goes back to the queue: leaving the page releases the item
    a.click("a.back")
    a.wait_for_url(f"{live_server.url}/console/review/")
    wait_for(lambda: ReviewItem.objects.get(pk=item.pk).state == "open", timeout=10, what="release on leaving")
    b.reload()
    b.click("#claim-status [data-claim]")
    b.wait_for_selector("#claim-status.claim-mine")
    assert "You are reviewing this item" in b.locator("#claim-status").inner_text()
    assert ReviewItem.objects.get(pk=item.pk).claimed_by.username == "noah"
    b.keyboard.press("a")
    b.wait_for_url(f"{live_server.url}/console/review/")
    d = Decision.objects.get(review_item=item)
    assert (d.outcome, d.moderator.username, d.reason_codes) == ("approve", "noah", [])
    a.context.close()
    b.context.close()


def test_bulk_reject_in_the_browser(browser, live_server, isolated_storage):
    items = [review_for(text_asset(title=f"bulk-{i}.txt")) for i in range(3)]
    make_user("mia")
    page = login(browser, live_server, "mia")
    for i in (0, 2):
        page.locator("tr.qrow", has_text=f"bulk-{i}.txt").locator("input[name=items]").check()
    assert page.locator("#sel-count").inner_text() == "2 selected"
    page.click("button[value=reject]")  # no reason chosen: refused in the page
    assert "Choose a reason" in page.locator(".bulkbar .form-error").inner_text()
    page.select_option("select[name=reasons]", "harassment/threat")
    page.click("button[value=reject]")
    page.wait_for_load_state()
    assert "Rejected 2 items" in page.locator(".messages").inner_text()
    assert {d.review_item_id for d in Decision.objects.filter(moderator__username="mia")} == {items[0].pk,
                                                                                              items[2].pk}
    assert ReviewItem.objects.get(pk=items[1].pk).state == "open"
    page.context.close()


def test_admin_replays_a_dead_letter_from_the_console(browser, live_server, start_worker, isolated_storage, tmp_path):
    start_worker()
    asset = ingest_text(tmp_path, "A calm sentence about boats.", name="calm.txt",
                        faults={"text_extract": {"permanent": True}})
    wait_status(asset, {"ready", "failed"})
    assert asset.status == "failed"
    dl = DeadLetter.objects.get(stage_run__asset=asset)
    make_user("mia")
    make_user("ada", "admin")

    mod = login(browser, live_server, "mia")  # moderators see dead letters, but cannot replay them
    mod.goto(f"{live_server.url}/console/dead-letters/")
    assert "injected permanent fault" in mod.locator("table").inner_text()
    assert mod.locator(".dlq-replay").count() == 0
    mod.context.close()

    MediaAsset.objects.filter(pk=asset.pk).update(metadata={})  # the cause is fixed
    admin = login(browser, live_server, "ada")
    admin.goto(f"{live_server.url}/console/dead-letters/")
    admin.locator(f"form[action='/console/dead-letters/{dl.pk}/replay/'] button").click()
    admin.wait_for_url(f"{live_server.url}/console/dead-letters/")
    assert "Replaying text_extract" in admin.locator(".messages").inner_text()
    assert "Nothing in the dead-letter list" in admin.locator("table").inner_text()
    wait_status(asset, {"ready"})
    ev = AuditEvent.objects.get(verb="dlq.replayed", target_id=str(dl.pk))
    assert (ev.actor_label, ev.payload["sent"]) == ("ada", True)
    # the library shows every stage finished; the asset page has the replay in its history
    admin.goto(f"{live_server.url}/console/")
    row = admin.locator("tr", has_text="calm")
    admin.wait_for_function("document.body.innerText.includes('5/5')")
    assert "ready" in row.inner_text()
    SHOTS.mkdir(parents=True, exist_ok=True)
    admin.screenshot(path=str(SHOTS / "library.png"))
    admin.goto(f"{live_server.url}/console/assets/{asset.pk}/")
    assert "dlq.replayed" in admin.locator("table.history").inner_text()
    admin.screenshot(path=str(SHOTS / "asset.png"), full_page=True)
    admin.goto(f"{live_server.url}/console/jobs/")
    admin.screenshot(path=str(SHOTS / "jobs.png"))
    admin.context.close()


def test_image_item_is_blurred_until_clicked_with_boxes_on_it(browser, live_server, isolated_storage, tmp_path,
                                                              monkeypatch):
    from apps.pipeline import services as pipeline

    monkeypatch.setattr(pipeline, "start_pipeline", lambda *a, **k: None)  # the insights are written below
    path = media.make_image(tmp_path / "beach.jpg", "BEACH DAY", size=(960, 640), background="gradient")
    asset = ingest_local_file(path, title="beach.jpg").asset
    kw = {"asset": asset, "engine_version": "browser-test@1", "keyframe_index": None}
    im.NsfwScore.objects.create(**kw, stage="nsfw", engine="open_nsfw", score=0.83)
    im.Detection.objects.create(**kw, stage="detect", engine="nudenet", detector="nudity", confidence=0.71,
                                label="BUTTOCKS_EXPOSED", box=[0.25, 0.5, 0.5, 0.9])
    item = review_for(asset)
    make_user("mia")
    page = login(browser, live_server, "mia")
    page.goto(f"{live_server.url}/console/review/items/{item.pk}/")
    wrap = page.locator(".image-wrap")
    assert "blurred" in wrap.get_attribute("class")
    page.wait_for_function("document.querySelector('.main-image img').naturalWidth === 960")
    assert not page.locator(".main-image .box.hit").is_visible()  # no labels over a blurred picture
    page.locator(".image-wrap .veil").click()
    assert "blurred" not in wrap.get_attribute("class")
    # the box sits over the image where the detector put it (normalised coordinates)
    img, box = page.locator(".main-image img").bounding_box(), page.locator(".main-image .box.hit").bounding_box()
    assert abs(box["x"] - (img["x"] + 0.25 * img["width"])) < 3 and abs(box["width"] - 0.25 * img["width"]) < 3
    assert abs(box["y"] - (img["y"] + 0.5 * img["height"])) < 3 and abs(box["height"] - 0.4 * img["height"]) < 3
    assert "buttocks_exposed 0.71" in page.locator(".main-image .box.hit").inner_text()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "review_item_image.png"))
    page.context.close()


@pytest.mark.slow
def test_video_item_page_seeks_blurs_and_compares_hashes(browser, live_server, start_worker, isolated_storage,
                                                         tmp_path, settings):
    """A real video through the real pipeline (speech, caption, a frame that matches a banked image)."""
    from dataclasses import replace

    stages = settings.MEDIAINTEL_STAGES  # the web plans the version of the OCR engine the worker runs
    settings.MEDIAINTEL_STAGES = replace(stages, ocr=replace(stages.ocr, engine="layered"))
    start_worker(concurrency=2, env={"MEDIAINTEL_OCR_ENGINE": "layered"})
    review_hash_matches()
    # the banked original: an image whose picture appears as the video's second scene
    original = ingest_local_file(media.make_image(tmp_path / "original.png", size=(1280, 720),
                                                  background="noise:7"), title="banked-original.png").asset
    wait_status(original, {"ready", "failed"}, timeout=300)
    bank = HashBank.objects.create(name="known-bad", kind=HashBank.Kind.BLOCK)
    assert len(actions.add_asset_to_bank(bank, original, label="case 2291")) == 1

    wav = media.make_speech_wav(tmp_path / "speech.wav",
                                "Welcome to the harbour tour. If you come back here, I will kill you.")
    scenes = (("checker:teal", 3.0), ("noise:7", 3.0), ("gradient", 3.0), ("bars", 3.0))
    video = media.make_video(tmp_path / "harbour-tour.mp4", scenes, size=(1280, 720), audio_wav=wav, motion=False,
                             text_overlays=[("YOU STUPID IDIOT", 6.2, 8.8)])
    asset = ingest_local_file(video, title="harbour-tour.mp4").asset
    wait_status(asset, {"ready", "failed"}, timeout=400)
    assert asset.status == "ready", list(StageRun.objects.filter(asset=asset).values("stage", "status",
                                                                                       "error_message"))
    item = ReviewItem.objects.get(asset=asset, state="open")
    assert {"harassment/threat", "known_bad/hash_match"} <= set(item.categories), item.categories
    # what NudeNet and a weapons detector would report on real footage (synthetic scenes give none):
    # added as the detect/nsfw stages write them, then moderation runs again over all insights
    frames = {k.scene_index: k for k in im.Keyframe.objects.filter(asset=asset).order_by("index")}
    kw = {"asset": asset, "stage": "detect", "engine_version": "browser-test@1"}
    f0, f3 = frames[0], frames[3]
    im.NsfwScore.objects.create(**{**kw, "stage": "nsfw"}, engine="open_nsfw", score=0.74, keyframe_index=f0.index,
                                start=f0.time, end=f0.time)
    im.Detection.objects.create(**kw, engine="nudenet", detector="nudity", label="FEMALE_BREAST_EXPOSED",
                                confidence=0.66, keyframe_index=f0.index, box=[0.36, 0.3, 0.58, 0.7],
                                start=f0.time, end=f0.time)
    im.Detection.objects.create(**kw, engine="yolo", detector="objects", label="knife", confidence=0.81,
                                keyframe_index=f3.index, box=[0.12, 0.42, 0.46, 0.63], start=f3.time, end=f3.time)
    services.moderate_asset(asset)
    item.refresh_from_db()
    assert "sexual/explicit_nudity" in item.categories
    make_user("mia")

    page = login(browser, live_server, "mia")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "review_queue.png"), full_page=True)
    page.locator("tr.qrow", has_text="harbour-tour.mp4").locator("a.open").click()
    page.wait_for_url(f"**/console/review/items/{item.pk}/")

    # the player streams /content (HTTP Range) and starts blurred: sexual signals
    page.wait_for_function("document.getElementById('player').readyState >= 1", timeout=20_000)
    assert abs(page.evaluate("document.getElementById('player').duration") - 12.0) < 0.5
    assert page.locator(".player-wrap.blurred").count() == 1
    # keyframe thumbnails load; the frame with nudity signals is blurred until clicked
    imgs = page.locator(".strip img")
    imgs.last.scroll_into_view_if_needed()
    page.wait_for_function("[...document.querySelectorAll('.strip img')].every(i => i.complete && i.naturalWidth > 0)")
    assert imgs.count() == len(frames)
    blurred = page.locator(f".frame[data-frame='{f0.index}']")
    assert "blurred" in blurred.get_attribute("class")
    assert page.locator(".frame.blurred").count() == 1
    assert page.locator(f".frame[data-frame='{f3.index}'] .box.hit", has_text="knife").count() == 1
    # flagged spans in transcript and OCR
    assert "kill you" in " ".join(page.locator(".segments mark.flag").all_inner_texts()).lower()
    # hash match side by side: this video's frame and the banked image
    hm = page.locator(".hashmatch").first
    assert "known-bad" in hm.inner_text() and "banked-original.png" in hm.inner_text()
    page.wait_for_function("[...document.querySelectorAll('.hashmatch img')].every(i => i.complete && i.naturalWidth)")
    assert hm.locator("img").count() == 2
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(SHOTS / "review_item.png"), full_page=True)
    page.screenshot(path=str(SHOTS / "review_item_top.png"))

    # clicking a timeline marker seeks the player to the flagged range
    marker = page.locator(".lane", has_text="harassment/threat").locator(".marker").first
    start = float(marker.get_attribute("data-seek"))
    marker.click()
    page.wait_for_function(f"Math.abs(document.getElementById('player').currentTime - {start}) < 0.6")
    # the playhead follows the player once it reports the new time (a timeupdate event, asynchronously)
    page.wait_for_selector(".timeline.playing", timeout=10_000)
    assert page.locator(".timeline.playing").count() == 1
    # the first click on a blurred frame only reveals it; the next one seeks to it
    blurred.click()
    assert "blurred" not in blurred.get_attribute("class")
    blurred.click()
    page.wait_for_function(f"Math.abs(document.getElementById('player').currentTime - {f0.time}) < 0.6")
    page.locator(".veil").first.click()
    assert page.locator(".player-wrap.blurred").count() == 0
    page.evaluate("document.getElementById('player').pause()")
    page.screenshot(path=str(SHOTS / "review_item_revealed.png"))

    # escalate with `e` (reasons preselected): the item goes to the top for a senior
    page.keyboard.press("e")
    page.wait_for_url(f"{live_server.url}/console/review/")
    item.refresh_from_db()
    assert item.state == "escalated"
    assert Decision.objects.get(review_item=item, automated_decision=False).moderator.username == "mia"
    page.context.close()
