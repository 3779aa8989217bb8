"""What is seen, end to end: a video cut from real photos through real workers; the bundled detector
and the tagger name person, dog, horse, giraffe, bird and bicycle in the scenes that show them, the
vocabulary answers "animal", and search, the insights API, the console and policy signals carry it."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from apps.assets.services import ingest_local_file
from apps.insights.labels import scene_labels
from apps.moderation import signals
from tests import media, vision
from tests.pipeline.helpers import wait_stage
from tests.search.conftest import client_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow,
              pytest.mark.skipif(not vision.available(), reason="Debian package darknet (sample photos) missing")]

SCENE_SECONDS = 4.0
PHOTOS = ("person.jpg", "dog.jpg", "horses.jpg", "giraffe.jpg", "eagle.jpg")
# concept → the scene (index into PHOTOS) it must be found in
EXPECTED = {"person": 0, "dog": 1, "bicycle": 1, "horse": 2, "giraffe": 3, "bird": 4}


@pytest.fixture
def moderator_user(django_user_model):
    user = django_user_model.objects.create_user("vision-mod", password="x")
    user.groups.add(Group.objects.get(name="moderator"))
    return user


@pytest.fixture
def moderator(moderator_user):
    return client_for(moderator_user)


def test_objects_in_real_photos_are_found_at_their_times(start_worker, isolated_storage, tmp_path, moderator,
                                                         moderator_user, client, monkeypatch):
    monkeypatch.delenv("MEDIAINTEL_DETECT_WEIGHTS", raising=False)
    start_worker(concurrency=2)
    scenes = [(f"photo:{vision.DARKNET_DATA / name}", SCENE_SECONDS) for name in PHOTOS]
    video = media.make_video(tmp_path / "photos.mp4", scenes, size=(960, 540), motion=False)
    asset = ingest_local_file(video).asset
    run = wait_stage(asset, "text_embed", {"done", "dead", "skipped"}, timeout=900)
    assert run.status == "done", (run.status, run.error_message)
    det = wait_stage(asset, "detect", {"done", "dead", "skipped"}, timeout=60)
    assert det.status == "done" and det.summary["objects_engine"].startswith("yolov3-tiny-"), det.summary

    labels = scene_labels(asset.pk)
    for concept, scene in EXPECTED.items():
        start, end = scene * SCENE_SECONDS, (scene + 1) * SCENE_SECONDS
        at = [g for g in labels if g["label"] == concept and g["start"] <= start + 0.3 and g["end"] >= end - 0.3]
        assert at, (concept, [(g["label"], g["start"], g["end"], g["raw"]) for g in labels])
        assert all(g["end"] - g["start"] <= SCENE_SECONDS + 0.3 for g in at)  # the scene, not the whole video
    # the hierarchy answers "animal": dog, horse, giraffe and bird, each in its own scene; no person
    animals = scene_labels(asset.pk, "animal")
    assert {"dog", "horse", "giraffe", "bird"} <= {g["label"] for g in animals}
    assert "person" not in {g["label"] for g in animals}
    assert all(g["ancestors"][-1] == "animal" for g in animals)

    # the insights API carries raw and canonical labels and the per-scene labels
    body = moderator.get(f"/api/v1/assets/{asset.pk}/insights/").json()
    objects = [d for d in body["detections"] if d["detector"] == "objects"]
    assert {"person", "dog", "horse", "giraffe", "bird"} <= {d["canonical"] for d in objects}
    assert all(t["canonical"] for t in body["tags"])
    assert {g["label"] for g in body["labels"]} >= set(EXPECTED)

    # search: a filter for "animal" finds the video; the word "giraffe" finds its scene's time range
    r = moderator.get("/api/v1/search/", {"q": "giraffe", "mode": "text", "tags": "animal"})
    assert r.status_code == 200, r.content
    results = r.json()["results"]
    assert results and results[0]["asset"]["id"] == str(asset.pk), results
    tags = [m for m in results[0]["moments"] if m["source"] == "tags"]
    giraffe_start = EXPECTED["giraffe"] * SCENE_SECONDS
    assert any(m["start"] <= giraffe_start + 0.3 and m["end"] >= giraffe_start + SCENE_SECONDS - 0.3
               and m["end"] - m["start"] <= SCENE_SECONDS + 0.3 for m in tags), tags
    assert moderator.get("/api/v1/search/", {"q": "giraffe", "mode": "text", "tags": "knife"}).json()["results"] == []

    # the console's asset page shows what is seen, per scene, with the hierarchy
    client.force_login(moderator_user)
    page = client.get(reverse("console-asset", args=[asset.pk])).content.decode()
    assert "What is seen" in page and 'data-label="giraffe"' in page and "giraffe › mammal › animal" in page

    # policies get person counts (evidence: how many, per frame)
    people = [s for s in signals.collect(asset.pk) if s["category_id"] == "context/people"]
    assert people and all(s["evidence"]["count"] >= 1 for s in people)
    assert any(s["start"] is not None and s["start"] < SCENE_SECONDS for s in people)
