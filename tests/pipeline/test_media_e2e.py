"""Real media through real workers and real models: video, audio and image end to end."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from apps.assets.services import ingest_local_file
from apps.insights import models as im
from apps.pipeline.models import StageRun
from tests import media
from tests.metrics import normalized_wer, normalized_words
from tests.pipeline.helpers import wait_status

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

SPEECH = "The museum opens at nine and the guided tour starts in the east wing."
SCENES = (("checker:teal", 3.0), ("noise:7", 3.0), ("gradient", 3.0))


@pytest.fixture
def moderator(django_user_model):
    user = django_user_model.objects.create_user("mod-e2e", password="x")
    user.groups.add(Group.objects.get(name="moderator"))
    c = APIClient()
    c.force_authenticate(user)
    return c


def test_video_with_speech_and_captions(start_worker, isolated_storage, tmp_path, moderator, settings):
    # a caption over a busy background: Tesseract alone cannot read it, the layered engine can
    from dataclasses import replace

    stages = settings.MEDIAINTEL_STAGES  # the web plans the version of the OCR engine the worker runs
    settings.MEDIAINTEL_STAGES = replace(stages, ocr=replace(stages.ocr, engine="layered"))
    start_worker(concurrency=2, env={"MEDIAINTEL_OCR_ENGINE": "layered"})
    wav = media.make_speech_wav(tmp_path / "speech.wav", SPEECH)
    video = media.make_video(tmp_path / "clip.mp4", SCENES, size=(1280, 720), audio_wav=wav, motion=False,
                             text_overlays=[("EAST WING TOUR", 3.2, 5.8)])
    asset = ingest_local_file(video).asset
    wait_status(asset, {"ready", "failed"}, timeout=400)
    runs = {r.stage: r for r in StageRun.objects.filter(asset=asset)}
    assert asset.status == "ready", {s: (r.status, r.error_message) for s, r in runs.items()}
    assert {r.status for r in runs.values()} == {"done"}
    # scenes: cuts within ±0.2 s of the truth
    cuts = [s.start for s in im.Scene.objects.filter(asset=asset).order_by("index")][1:]
    truth = media.scene_cut_times(SCENES)
    assert len(cuts) == len(truth) and all(abs(a - b) <= 0.2 for a, b in zip(cuts, truth, strict=True))
    # one keyframe per scene at least, each with a thumbnail served by the API
    kfs = list(im.Keyframe.objects.filter(asset=asset).order_by("index"))
    assert {k.scene_index for k in kfs} == {0, 1, 2}
    thumb = moderator.get(f"/api/v1/assets/{asset.pk}/keyframes/{kfs[0].index}.jpg")
    assert thumb.status_code == 200 and thumb.content[:3] == b"\xff\xd8\xff"
    # speech
    transcript = " ".join(im.TranscriptSegment.objects.filter(asset=asset).order_by("index")
                          .values_list("text", flat=True))
    # the pipeline carried the speech through: recognisably what was said (the engine's quality on
    # speech is judged over many voices in tests/workers/engines/test_transcribe.py)
    assert normalized_wer(SPEECH, transcript) <= 0.5, f"heard {transcript!r} for {SPEECH!r}"
    assert {"museum", "guided", "wing"} <= set(normalized_words(transcript)), f"heard {transcript!r}"
    # on-screen text, with the time range of the scene that shows it
    ocr = list(im.OcrText.objects.filter(asset=asset))
    hit = [o for o in ocr if "EAST WING" in o.text.upper()]
    assert hit and hit[0].start <= 4.0 <= hit[0].end and hit[0].start >= 2.9, [(o.text, o.start, o.end) for o in ocr]
    # ordinary content scores low; text is searchable with its time range; language found
    assert max(im.NsfwScore.objects.filter(asset=asset).values_list("score", flat=True)) < 0.3
    chunks = im.TextChunk.objects.filter(asset=asset)
    assert chunks.filter(source="transcript").exists() and chunks.filter(source="ocr").exists()
    assert im.Language.objects.get(asset=asset, source="transcript").language == "en"
    body = moderator.get(f"/api/v1/assets/{asset.pk}/insights/").json()
    assert len(body["scenes"]) == 3 and body["transcript"] and body["hashes"][0]["hex"]
    assert all(r["engine_version"] for r in body["transcript"])


def test_audio_without_video_and_image_without_audio(start_worker, isolated_storage, tmp_path):
    start_worker(concurrency=2)
    wav = media.make_speech_wav(tmp_path / "talk.wav", "Please close the window before you leave.")
    image = media.make_image(tmp_path / "sign.png", "NO PARKING", size=(800, 400))
    silent = media.make_video(tmp_path / "silent.mp4", (("red", 1.0), ("blue", 1.0)), size=(320, 240))
    a = ingest_local_file(wav).asset
    i = ingest_local_file(image).asset
    v = ingest_local_file(silent).asset
    for asset in (a, i, v):
        wait_status(asset, {"ready", "failed"}, timeout=300)
        assert asset.status == "ready", list(StageRun.objects.filter(asset=asset).values("stage", "status",
                                                                                           "error_message"))
    assert "window" in " ".join(im.TranscriptSegment.objects.filter(asset=a).values_list("text", flat=True)).lower()
    assert "NO PARKING" in " ".join(im.OcrText.objects.filter(asset=i).values_list("text", flat=True)).upper()
    assert im.PerceptualHash.objects.filter(asset=i).count() == 1
    skipped = StageRun.objects.get(asset=v, stage="audio")
    assert skipped.status == "skipped" and "no audio" in skipped.skip_reason
