"""Tests of workers.engines.scenes (PySceneDetect) on generated videos with known cuts."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import scenedetect

from tests import media
from workers.engines import scenes
from workers.engines.base import PermanentEngineError

THREE = [("red", 2.0), ("noise:7", 2.0), ("checker:cyan", 2.0)]


@pytest.fixture(scope="module")
def three_scene_720p(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """≈ 3 × 2 s at 1280×720, 25 fps: solid colour, noise texture, tinted checkerboard."""
    return media.make_video(tmp_path_factory.mktemp("scenes") / "three.mp4", THREE, size=(1280, 720), fps=25)


def _assert_covering(found: list[scenes.Scene], duration: float, frames: int) -> None:
    assert [s.index for s in found] == list(range(len(found)))
    assert found[0].start == 0.0 and found[0].start_frame == 0
    assert found[-1].end == pytest.approx(duration, abs=0.05)
    assert found[-1].end_frame == frames
    for a, b in itertools.pairwise(found):
        assert a.end == pytest.approx(b.start) and a.end_frame == b.start_frame
        assert a.duration > 0


def test_cuts_found_within_tolerance(three_scene_720p: Path) -> None:
    found = scenes.SceneDetectEngine().detect(three_scene_720p)
    truth = media.scene_cut_times(THREE)
    assert len(found) == 3
    for got, want in zip(scenes.cut_times(found), truth, strict=True):
        assert got == pytest.approx(want, abs=0.2)
    assert [s.start_frame for s in found] == [0, 50, 100]
    _assert_covering(found, 6.0, 150)


@pytest.mark.parametrize(
    "kwargs",
    [{"detector": "adaptive"}, {"backend": "opencv"}, {"downscale": 2}, {"detector": "histogram"}],
    ids=["adaptive", "opencv-backend", "downscale2", "histogram"],
)
def test_detector_variants_agree(three_scene_720p: Path, kwargs: dict) -> None:
    found = scenes.SceneDetectEngine(**kwargs).detect(three_scene_720p)
    assert scenes.cut_times(found) == pytest.approx(media.scene_cut_times(THREE), abs=0.2)
    _assert_covering(found, 6.0, 150)


def test_video_without_cuts_is_one_scene(tmp_path: Path) -> None:
    path = media.make_video(tmp_path / "one.mp4", [("gradient", 3.0)], size=(640, 360))
    found = scenes.detect_scenes(path)
    assert len(found) == 1
    _assert_covering(found, 3.0, 75)


def test_many_short_scenes_and_min_scene_len(tmp_path: Path) -> None:
    spec = [("red", 1.0), ("blue", 1.0), ("yellow", 0.2), ("green", 1.0), ("bars", 1.0)]
    path = media.make_video(tmp_path / "many.mkv", spec, size=(480, 270))
    truth = media.scene_cut_times(spec)
    found = scenes.detect_scenes(path, min_scene_len=0.1)
    assert scenes.cut_times(found) == pytest.approx(truth, abs=0.2)
    merged = scenes.detect_scenes(path, min_scene_len=0.5)  # the 0.2 s flash cannot be its own scene
    assert len(merged) == len(spec) - 1
    _assert_covering(merged, 4.2, 105)


def test_engine_info() -> None:
    engine = scenes.SceneDetectEngine("adaptive", threshold=2.5)
    assert engine.info.name == "pyscenedetect"
    assert scenedetect.__version__ in engine.info.version
    assert "adaptive" in engine.info.version and "2.5" in engine.info.version
    default = scenes.SceneDetectEngine()
    assert default.threshold == 27.0 and "content" in default.info.version
    assert default.info.version != engine.info.version
    assert default.info.version != scenes.SceneDetectEngine(threshold=30).info.version
    with pytest.raises(ValueError):
        scenes.SceneDetectEngine("nope")  # type: ignore[arg-type]


@pytest.mark.parametrize("backend", ["pyav", "opencv"])
def test_corrupt_and_audio_only_inputs(tmp_path: Path, backend: str) -> None:
    video = media.make_video(tmp_path / "v.mp4", [("red", 1.0)], size=(320, 180))
    bad = [
        media.truncate_copy(video, tmp_path / "trunc.mp4", 0.5),
        media.make_garbage_file(tmp_path / "garbage.mkv"),
        tmp_path / "missing.mp4",
    ]
    if backend == "pyav":
        bad.append(media.make_tone_wav(tmp_path / "audio.wav", 1.0))
    engine = scenes.SceneDetectEngine(backend=backend)  # type: ignore[arg-type]
    for path in bad:
        with pytest.raises(PermanentEngineError):
            engine.detect(path)


def test_scene_engine_takes_the_detector_default_threshold_when_none_is_configured() -> None:
    engine = scenes.make_engine(detector="adaptive", threshold=4.5)
    assert (engine.detector, engine.threshold) == ("adaptive", 4.5)
    assert scenes.make_engine(detector="content", threshold=30).threshold == 30.0
    assert scenes.make_engine(detector="adaptive", threshold=None).threshold == 3.0  # the detector's own
    assert scenes.make_engine().detector == "content"
