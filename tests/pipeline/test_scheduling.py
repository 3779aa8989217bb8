"""Scheduling on real workers: short work is taken before long work; transcription threads as configured."""

from __future__ import annotations

import pytest

from apps.assets.services import ingest_local_file
from apps.pipeline.models import StageRun
from tests import media
from tests.pipeline.helpers import ingest_text, wait_status

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_a_text_uploaded_after_a_video_is_ready_before_the_video_starts_when_one_child_serves_both(
        start_worker, isolated_storage, tmp_path):
    video = ingest_local_file(media.make_video(tmp_path / "clip.mp4", (("gradient", 2.0),), size=(320, 240))).asset
    text = ingest_text(tmp_path, "The museum opens at nine and the guided tour starts in the east wing.")
    start_worker(concurrency=1)  # both assets' first messages wait in the broker, the video's first
    wait_status(video, {"ready", "failed"}, timeout=400)
    text.refresh_from_db()
    assert text.status == "ready" and video.status == "ready"
    text_done = max(r.finished_at for r in StageRun.objects.filter(asset=text, current=True))
    video_started = min(r.started_at for r in StageRun.objects.filter(asset=video, current=True) if r.started_at)
    assert text_done < video_started


def test_transcription_runs_on_the_threads_the_setting_names_when_it_differs_from_the_childs_share(
        start_worker, isolated_storage, tmp_path):
    wav = media.make_speech_wav(tmp_path / "talk.wav", "Please close the window before you leave.")
    asset = ingest_local_file(wav).asset
    start_worker(concurrency=2, env={"MEDIAINTEL_THREADS_PER_CHILD": "1", "MEDIAINTEL_TRANSCRIBE_THREADS": "2"})
    wait_status(asset, {"ready", "failed"}, timeout=400)
    run = StageRun.objects.get(asset=asset, stage="transcribe", current=True)
    assert run.status == "done" and run.summary["cpu_threads"] == 2
