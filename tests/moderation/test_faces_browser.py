"""The review page blurs detected faces on request, in real Chromium (Debian's /usr/bin/chromium through
PyPI playwright): the faces stored by the real detector are blurred on the image when the toggle is on
(pixel variance inside each face box drops), the rest of the picture is untouched, and off again.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from apps.assets.services import ingest_local_file
from apps.insights import models as im
from apps.moderation import actions
from apps.moderation.taxonomy import DEFAULT_RULES
from tests.moderation.test_console import make_user, review_for
from tests.moderation.test_console_browser import SHOTS, _seeded, browser, login  # noqa: F401 (fixtures)
from tests.workers.engines.test_faces import collage

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


def _variance(page, clip: dict[str, float]) -> float:
    """Grey-level variance of the screen region ``clip`` (CSS pixels), from a real screenshot."""
    shot = Image.open(io.BytesIO(page.screenshot(clip=clip))).convert("L")
    return float(np.asarray(shot, np.float32).var())


def test_blur_faces_toggle_blurs_each_detected_face_and_nothing_else(browser, live_server, isolated_storage,  # noqa: F811
                                                                     tmp_path, monkeypatch):
    from apps.pipeline import services as pipeline
    from workers.engines.faces import get_face_detector

    monkeypatch.setattr(pipeline, "start_pipeline", lambda *a, **k: None)  # the faces stage's rows are written below
    image, _ = collage([360, 200, 120], canvas=(960, 640))
    image.save(tmp_path / "portraits.jpg", quality=92)
    asset = ingest_local_file(tmp_path / "portraits.jpg", title="portraits.jpg").asset
    detector = get_face_detector()  # the real detector, as the faces stage runs it
    found = detector.detect_one(image)
    assert len(found) == 3
    im.FaceFrame.objects.create(asset=asset, stage="faces", engine=detector.info.name,
                                engine_version=detector.info.version, keyframe_index=None, count=len(found),
                                boxes=[{"box": list(f.box), "confidence": f.confidence} for f in found])
    rules = {**DEFAULT_RULES, "categories": {**DEFAULT_RULES["categories"],
                                             "people/face": {"review": 0.6, "block": 1.01}}}
    actions.new_policy_version(rules, user=None, note="faces need a look")
    item = review_for(asset)
    assert "people/face" in item.categories
    make_user("mia")
    page = login(browser, live_server, "mia")
    page.goto(f"{live_server.url}/console/review/items/{item.pk}/")
    page.wait_for_function("document.querySelector('.main-image img').naturalWidth === 960")
    toggle = page.locator("#blur-faces")
    assert "3 detected" in toggle.inner_text() and toggle.get_attribute("aria-pressed") == "false"
    faces = page.locator(".main-image .face")
    assert faces.count() == 3 and not faces.first.is_visible()  # off until asked for

    img = page.locator(".main-image img").bounding_box()

    def region(box: tuple[float, float, float, float]) -> dict[str, float]:
        x1, y1, x2, y2 = box
        return {"x": img["x"] + x1 * img["width"], "y": img["y"] + y1 * img["height"],
                "width": (x2 - x1) * img["width"], "height": (y2 - y1) * img["height"]}

    face_regions = [region(f.box) for f in found]
    # a stretch of landscape well away from the portraits (the bottom band of the collage)
    background = region((0.05, 0.8, 0.95, 0.97))
    sharp = [_variance(page, r) for r in face_regions]
    sharp_bg = _variance(page, background)

    toggle.click()
    assert toggle.get_attribute("aria-pressed") == "true"
    page.wait_for_function("[...document.querySelectorAll('.main-image .face')].every(f => f.offsetWidth > 0)")
    blurred = [_variance(page, r) for r in face_regions]
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "review_item_faces_blurred.png"))
    for before, after in zip(sharp, blurred, strict=True):
        assert after < 0.5 * before, (sharp, blurred)
    # each overlay covers its face box (grown by the console's margin), and nothing else changed
    for f, el in zip(sorted(found, key=lambda f: f.box[0]), sorted(faces.all(), key=lambda e: e.bounding_box()["x"]),
                     strict=True):
        r, b = region(f.box), el.bounding_box()
        assert b["x"] <= r["x"] + 1 and b["y"] <= r["y"] + 1
        assert b["x"] + b["width"] >= r["x"] + r["width"] - 1 and b["y"] + b["height"] >= r["y"] + r["height"] - 1
    assert _variance(page, background) == pytest.approx(sharp_bg, rel=0.02)

    page.keyboard.press("b")  # the key turns it off again
    assert toggle.get_attribute("aria-pressed") == "false" and not faces.first.is_visible()
    again = [_variance(page, r) for r in face_regions]
    assert again == pytest.approx(sharp, rel=0.02)

    # the choice is remembered for the next page (a moderator who blurs faces keeps them blurred)
    toggle.click()
    page.reload()
    page.wait_for_function("document.querySelector('.main-image img').naturalWidth === 960")
    assert page.locator("#blur-faces").get_attribute("aria-pressed") == "true"
    assert page.locator(".main-image .face").first.is_visible()
    page.context.close()


def test_blur_faces_covers_the_faces_on_video_keyframes(browser, live_server, isolated_storage):  # noqa: F811
    """Keyframe thumbnails of a video: faces found by the real detector on the keyframe are blurred in the
    strip when toggled; a keyframe without faces gets no overlay."""
    from apps.assets.models import MediaAsset
    from tests.moderation.test_console import _sha
    from workers.engines.faces import get_face_detector

    sha = _sha()
    asset = MediaAsset.objects.create(kind="video", sha256=sha, size=10_000, mime_type="video/mp4",
                                      storage_key=f"blobs/{sha}", title="interview.mp4", duration=6.0, width=960,
                                      height=640, status="ready")
    portraits, _ = collage([400, 220], canvas=(960, 640))
    landscape = collage([], canvas=(960, 640))[0]
    detector = get_face_detector()
    for index, (t, picture) in enumerate(((0.0, landscape), (3.0, portraits))):
        buf = io.BytesIO()
        picture.resize((480, 320)).save(buf, "JPEG", quality=90)
        im.Keyframe.objects.create(asset=asset, stage="keyframes", engine="pyav", engine_version="t@1", index=index,
                                   frame_index=int(t * 25), scene_index=index, time=t, start=t, end=t + 3,
                                   width=960, height=640, storage_key=f"kf/{sha}/{index}.jpg",
                                   thumbnail=buf.getvalue())
        found = detector.detect_one(picture)
        im.FaceFrame.objects.create(asset=asset, stage="faces", engine=detector.info.name,
                                    engine_version=detector.info.version, keyframe_index=index, start=t, end=t,
                                    count=len(found),
                                    boxes=[{"box": list(f.box), "confidence": f.confidence} for f in found])
    faces_at_3s = im.FaceFrame.objects.get(asset=asset, keyframe_index=1)
    assert faces_at_3s.count == 2 and im.FaceFrame.objects.get(asset=asset, keyframe_index=0).count == 0
    rules = {**DEFAULT_RULES, "categories": {**DEFAULT_RULES["categories"],
                                             "people/face": {"review": 0.6, "block": 1.01}}}
    actions.new_policy_version(rules, user=None, note="faces need a look")
    item = review_for(asset)
    make_user("mia")
    page = login(browser, live_server, "mia")
    page.goto(f"{live_server.url}/console/review/items/{item.pk}/")
    page.wait_for_function("[...document.querySelectorAll('.strip img')].every(i => i.complete && i.naturalWidth)")
    assert page.locator(".frame[data-frame='0'] .face").count() == 0
    assert page.locator(".frame[data-frame='1'] .face").count() == 2
    img = page.locator(".frame[data-frame='1'] img").bounding_box()
    regions = [{"x": img["x"] + b["box"][0] * img["width"], "y": img["y"] + b["box"][1] * img["height"],
                "width": (b["box"][2] - b["box"][0]) * img["width"],
                "height": (b["box"][3] - b["box"][1]) * img["height"]} for b in faces_at_3s.boxes]
    other = page.locator(".frame[data-frame='0'] img").bounding_box()
    sharp, sharp_other = [_variance(page, r) for r in regions], _variance(page, other)
    page.locator("#blur-faces").click()
    page.wait_for_function("[...document.querySelectorAll('.strip .face')].every(f => f.offsetWidth > 0)")
    blurred = [_variance(page, r) for r in regions]
    for before, after in zip(sharp, blurred, strict=True):
        assert after < 0.5 * before, (sharp, blurred)
    assert _variance(page, other) == pytest.approx(sharp_other, rel=0.02)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.locator(".strip").screenshot(path=str(SHOTS / "review_item_keyframe_faces_blurred.png"))
    page.context.close()
