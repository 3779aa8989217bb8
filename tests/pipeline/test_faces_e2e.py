"""Faces through the real pipeline: a real worker runs the ``faces`` stage on an image and on a video's
keyframes, the insights API returns counts and boxes, and a policy that opts in reviews on face presence.
"""

from __future__ import annotations

import av
import numpy as np
import pytest
from django.contrib.auth.models import Group
from PIL import Image
from rest_framework.test import APIClient

from apps.assets.services import ingest_local_file
from apps.insights import models as im
from apps.moderation import actions
from apps.moderation.models import ReviewItem, Signal
from apps.moderation.taxonomy import DEFAULT_RULES
from apps.pipeline.models import StageRun
from tests.moderation.test_console import seed_moderation
from tests.pipeline.helpers import wait_status
from tests.workers.engines.test_faces import collage, package_photo

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def moderator(django_user_model):
    seed_moderation()
    user = django_user_model.objects.create_user("mod-faces", password="x")
    user.groups.add(Group.objects.get(name="moderator"))
    c = APIClient()
    c.force_authenticate(user)
    return c


def write_video(path, stills: list[tuple[Image.Image, float]], size=(640, 360), fps=10):
    """H.264 video showing each still for its seconds (a cut between them)."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        for still, seconds in stills:
            arr = np.asarray(still.convert("RGB").resize(size))
            for _ in range(int(seconds * fps)):
                out.mux(stream.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")))
        out.mux(stream.encode())
    return path


def ready(asset):
    wait_status(asset, {"ready", "failed"}, timeout=400)
    assert asset.status == "ready", list(StageRun.objects.filter(asset=asset).values("stage", "status",
                                                                                       "error_message"))


def test_faces_are_counted_and_boxed_on_images_and_keyframes_and_policies_can_use_them(
        start_worker, isolated_storage, tmp_path, moderator):
    # a policy that opts in: any face sends the asset to review (e.g. a children's platform)
    rules = {**DEFAULT_RULES, "categories": {**DEFAULT_RULES["categories"],
                                             "people/face": {"review": 0.6, "block": 1.01}}}
    actions.new_policy_version(rules, user=None, note="faces need a look")
    start_worker(concurrency=2)

    image, _ = collage([300, 160, 90])
    image.save(tmp_path / "three-portraits.jpg", quality=92)
    landscape = package_photo("sklearn", "datasets/images/china.jpg")
    landscape.save(tmp_path / "landscape.jpg", quality=92)
    video = write_video(tmp_path / "cut-to-people.mp4", [(landscape, 3.0), (image, 3.0)])

    with_faces = ingest_local_file(tmp_path / "three-portraits.jpg").asset
    without = ingest_local_file(tmp_path / "landscape.jpg").asset
    clip = ingest_local_file(video).asset
    for a in (with_faces, without, clip):
        ready(a)

    (frame,) = im.FaceFrame.objects.filter(asset=with_faces)
    assert frame.keyframe_index is None and frame.count == 3 and len(frame.boxes) == 3
    assert frame.engine == "yunet-faces" and frame.engine_version
    assert all(0 <= v <= 1 for b in frame.boxes for v in b["box"]) and all(b["confidence"] >= 0.5
                                                                           for b in frame.boxes)
    assert list(im.FaceFrame.objects.filter(asset=without).values_list("count", flat=True)) == [0]

    # keyframes: none in the landscape scene, three after the cut at 3 s
    rows = list(im.FaceFrame.objects.filter(asset=clip).order_by("keyframe_index"))
    assert rows and {r.keyframe_index for r in rows} == set(
        im.Keyframe.objects.filter(asset=clip).values_list("index", flat=True))
    assert all(r.count == 0 for r in rows if r.start < 2.9)
    assert any(r.count == 3 for r in rows if r.start >= 2.9), [(r.start, r.count) for r in rows]

    # the insights API returns them
    body = moderator.get(f"/api/v1/assets/{with_faces.pk}/insights/").json()
    assert body["faces"][0]["count"] == 3 and len(body["faces"][0]["boxes"]) == 3
    assert body["faces"][0]["engine"] == "yunet-faces"

    # signals: presence and count; the opted-in policy reviews the faces, not the landscape
    sig = {s.category_id: s for s in Signal.objects.filter(asset=with_faces)}
    assert sig["people/face"].score >= 0.6 and sig["people/face"].evidence["count"] == 3
    assert sig["people/faces_count"].score == pytest.approx(0.3)
    item = ReviewItem.objects.get(asset=with_faces)
    assert "people/face" in item.categories
    assert not Signal.objects.filter(asset=without, category__code__startswith="people/").exists()
    assert not ReviewItem.objects.filter(asset=without).exists()
    assert ReviewItem.objects.filter(asset=clip, categories__contains=["people/face"]).exists()
