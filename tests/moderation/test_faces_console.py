"""Faces on the review page (Django test client): the blur toggle and one overlay per stored face box
on the keyframe it belongs to; face signals read as counts; nothing shown where no face was found.
The blur itself is checked in Chromium (``test_faces_browser.py``)."""

from __future__ import annotations

import re

import pytest

from apps.insights import models as im
from apps.moderation import signals
from apps.moderation.evidence import face_boxes
from apps.moderation.models import Signal
from tests.moderation.test_console import client_for, make_user, seed_moderation, video_item

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _seeded(db):
    seed_moderation()


def add_faces(asset, per_frame: dict[int, list[list[float]]]) -> None:
    for index, boxes in per_frame.items():
        kf = im.Keyframe.objects.get(asset=asset, index=index)
        im.FaceFrame.objects.create(asset=asset, stage="faces", engine="yunet-faces", engine_version="t@1",
                                    keyframe_index=index, start=kf.time, end=kf.time, count=len(boxes),
                                    boxes=[{"box": b, "confidence": 0.9} for b in boxes])


def test_item_page_offers_blur_faces_with_one_overlay_per_face_on_its_keyframe():
    item = video_item()
    add_faces(item.asset, {0: [], 1: [[0.1, 0.2, 0.3, 0.5], [0.6, 0.1, 0.7, 0.3]], 3: [[0.4, 0.4, 0.5, 0.6]]})
    html = client_for(make_user("mia")).get(f"/console/review/items/{item.pk}/").content.decode()
    assert 'id="blur-faces"' in html and "3 detected" in html
    frames = dict(re.findall(r'data-frame="(\d+)">(.*?)</figure>', html, re.S))
    assert [len(re.findall(r'class="face"', frames[str(i)])) for i in range(4)] == [0, 2, 0, 1]
    # grown by the margin (12 % of the box per side) and clipped to the image, as percentages
    assert 'data-box="7.60 16.40 32.40 53.60"' in frames["1"]


def test_no_toggle_where_no_face_was_found():
    item = video_item()
    add_faces(item.asset, {0: [], 1: []})
    html = client_for(make_user("mia")).get(f"/console/review/items/{item.pk}/").content.decode()
    assert 'id="blur-faces"' not in html and 'class="face"' not in html


def test_face_signals_carry_presence_and_count_per_frame():
    item = video_item()
    add_faces(item.asset, {0: [], 2: [[0.1, 0.1, 0.2, 0.2]] * 12})
    rows = signals.face_signals(item.asset.pk)
    assert {(r["category_id"], r["score"], r["keyframe_index"]) for r in rows} == {
        ("people/face", 0.9, 2), ("people/faces_count", 1.0, 2)}
    assert all(r["evidence"]["count"] == 12 and r["source"] == "faces" for r in rows)
    Signal.objects.create(asset=item.asset, category_id="people/face", score=0.9, source="faces", engine="yunet-faces",
                          engine_version="t@1", keyframe_index=2, evidence={"count": 12})
    html = client_for(make_user("mia")).get(f"/console/review/items/{item.pk}/").content.decode()
    assert "12 faces (detected, not identified)" in html


def test_malformed_face_boxes_are_skipped_not_fatal():
    assert face_boxes([{"box": [0.5, 0.5, 0.4, 0.6]}, {"box": "x"}, {"nope": 1}, None, [0.0, 0.0, 1.0, 1.0]]) == [
        "0.00 0.00 100.00 100.00"]
    assert face_boxes("not a list") == []
