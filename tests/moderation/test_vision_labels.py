"""Labels per scene, the "animal" filter, and the object signals policies get, on stored insight rows."""

from __future__ import annotations

import pytest
from django.db import connection

from apps.insights.labels import scene_labels
from apps.insights.models import Detection, Keyframe, Scene, Tag
from apps.moderation import signals
from apps.moderation.evidence import label_lanes
from apps.search.filters import ASSETS, Filters
from tests.search.helpers import make_asset

pytestmark = pytest.mark.django_db

COMMON = {"stage": "x", "engine": "e", "engine_version": "1"}


def _video_with_labels():
    video = make_asset("video", duration=30.0)
    for i, (start, end) in enumerate(((0.0, 10.0), (10.0, 30.0))):
        Scene.objects.create(asset=video, **COMMON, index=i, start=start, end=end, start_frame=int(start * 25),
                             end_frame=int(end * 25))
    for i, (t, scene) in enumerate(((2.0, 0), (12.0, 1), (25.0, 1))):
        Keyframe.objects.create(asset=video, **COMMON, index=i, frame_index=int(t * 25), scene_index=scene, time=t,
                                start=t, end=t, width=64, height=36, storage_key=f"kf{i}", thumbnail=b"")

    def det(kf: int, t: float, label: str, conf: float, canonical: str = "", detector: str = "objects") -> None:
        Detection.objects.create(asset=video, **COMMON, detector=detector, label=label, canonical=canonical,
                                 confidence=conf, keyframe_index=kf, start=t, end=t, box=[0.1, 0.1, 0.5, 0.5])

    for _ in range(3):
        det(0, 2.0, "person", 0.9, "person")
    det(0, 2.0, "scissors", 0.6, "scissors")
    det(0, 2.0, "FACE_FEMALE", 0.8, detector="nudity")
    det(1, 12.0, "dog", 0.7, "dog")
    det(2, 25.0, "dog", 0.8, "dog")
    Tag.objects.create(asset=video, **COMMON, label="German shepherd", canonical="dog", score=0.6, keyframe_index=2,
                       start=25.0, end=25.0)
    Tag.objects.create(asset=video, **COMMON, label="sorrel", canonical="", score=0.5, keyframe_index=0,
                       start=2.0, end=2.0)  # a row written before canonical labels: read through the vocabulary
    Tag.objects.create(asset=video, **COMMON, label="ox", canonical="cow", score=0.05, keyframe_index=1,
                       start=12.0, end=12.0)  # too unsure to place a cow in the scene
    return video


def test_labels_are_aggregated_per_scene_with_the_scene_range_and_raw_labels():
    video = _video_with_labels()
    got = {(g["label"], g["scene_index"]): g for g in scene_labels(video.pk)}
    assert set(got) == {("person", 0), ("scissors", 0), ("horse", 0), ("dog", 1)}
    dog = got[("dog", 1)]
    assert (dog["start"], dog["end"]) == (10.0, 30.0)
    assert dog["raw"] == ["German shepherd", "dog"] and dog["confidence"] == 0.8 and dog["keyframes"] == [1, 2]
    assert dog["ancestors"] == ["mammal", "animal"]
    assert (got[("horse", 0)]["start"], got[("horse", 0)]["end"]) == (0.0, 10.0)
    assert {g["label"] for g in scene_labels(video.pk, "animal")} == {"dog", "horse"}
    lanes = {lane["label"]: lane for lane in label_lanes(scene_labels(video.pk), 30.0)}
    assert lanes["dog"]["path"] == "dog › mammal › animal"
    assert [(m["left"], m["width"]) for m in lanes["dog"]["markers"]] == [(33.333, 66.667)]


def test_a_filter_for_a_concept_finds_breeds_and_detector_labels():
    video = _video_with_labels()
    other = make_asset("video", duration=30.0)
    Tag.objects.create(asset=other, **COMMON, label="sports car", canonical="car", score=0.9)

    def found(*tags: str) -> set:
        conds, params = Filters(tags=tags).asset_sql("a")
        with connection.cursor() as cur:
            cur.execute(f"SELECT a.id FROM {ASSETS} a WHERE " + " AND ".join(conds), params)  # noqa: S608
            return {row[0] for row in cur.fetchall()}

    assert found("animal") == found("dog") == found("German shepherd") == {video.pk}
    assert found("vehicle") == found("car") == {other.pk}
    assert found("giraffe") == set()


def test_people_counts_and_weapon_adjacent_objects_are_policy_signals():
    video = _video_with_labels()
    rows = signals.collect(video.pk)
    people = [r for r in rows if r["category_id"] == "context/people"]
    assert len(people) == 1 and people[0]["evidence"]["count"] == 3 and people[0]["score"] == pytest.approx(0.3)
    assert people[0]["start"] == 2.0
    adjacent = [r for r in rows if r["source"] == "objects_adjacent"]
    assert [(r["category_id"], r["evidence"]["label"]) for r in adjacent] == [("violence/weapons", "scissors")]
