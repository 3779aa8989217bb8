"""Tests of workers.engines.decode on generated media (no Django, no network)."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests import media
from workers.engines import decode
from workers.engines.base import PermanentEngineError

SCENES = [("red", 2.0), ("blue", 2.0), ("green", 2.0)]
SCENE_RGB = [(255, 0, 0), (0, 0, 255), (0, 128, 0)]


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("decode_media")


@pytest.fixture(scope="module")
def video720(media_dir: Path) -> Path:
    """3 × 2 s, 1280×720, 25 fps, H.264 + AAC 44.1 kHz stereo 440 Hz tone."""
    return media.make_video(media_dir / "three.mp4", SCENES, size=(1280, 720), fps=25, tone_hz=440.0)


@pytest.fixture(scope="module")
def long_video(media_dir: Path) -> Path:
    """A 2 s scene and a 23 s scene, small frames, keyframe every 5 s (forces real seeking)."""
    return media.make_video(media_dir / "long.mp4", [("red", 2.0), ("blue", 23.0)], size=(320, 180),
                            gop=125)


def _mean_rgb(image: Image.Image) -> np.ndarray:
    arr = np.asarray(image, dtype=np.float64)
    h, w = arr.shape[:2]
    return arr[h // 3: 2 * h // 3, w // 4: 3 * w // 4].reshape(-1, 3).mean(axis=0)  # avoids the square


def _square_x(image: Image.Image, scene_rgb: tuple[int, int, int]) -> int:
    """Left edge of the moving (inverted) square drawn by tests.media in the frame."""
    arr = np.asarray(image, dtype=np.int32)
    h = arr.shape[0]
    row = arr[h // 8 + 2]
    diff = np.abs(row - np.array(scene_rgb)).sum(axis=1) > 200
    return int(np.argmax(diff))


def _expected_square_x(frame_index: int, width: int = 320, height: int = 180, fps: int = 25) -> int:
    side = max(4, min(width, height) // 10)
    return int((frame_index * width / (4 * fps)) % max(1, width - side))


# --------------------------------------------------------------------------- probe


def test_probe_generated_video(video720: Path) -> None:
    info = decode.probe(video720)
    assert info.duration == pytest.approx(6.0, abs=0.05)
    assert (info.width, info.height) == (1280, 720)
    assert info.display_size == (1280, 720)
    assert info.fps == pytest.approx(25.0)
    assert info.frame_count == 150
    assert info.has_video and info.has_audio
    assert info.video_codec == "h264"
    assert info.audio_codec == "aac"
    assert info.sample_rate == 44100
    assert info.channels == 2
    assert info.bit_rate and info.bit_rate > 0
    assert "mp4" in info.format_name
    assert not info.is_image and not info.truncated


def test_probe_video_without_audio(long_video: Path) -> None:
    info = decode.probe(long_video)
    assert info.has_video and not info.has_audio
    assert info.audio_codec is None and info.sample_rate is None
    assert info.duration == pytest.approx(25.0, abs=0.05)
    assert (info.width, info.height) == (320, 180)


def test_probe_audio_only_wav(tmp_path: Path) -> None:
    wav = media.make_tone_wav(tmp_path / "tone.wav", 1.5, sample_rate=22050)
    info = decode.probe(wav)
    assert not info.has_video and info.has_audio
    assert info.duration == pytest.approx(1.5, abs=0.01)
    assert (info.sample_rate, info.channels) == (22050, 1)


def test_probe_image(tmp_path: Path) -> None:
    info = decode.probe(media.make_image(tmp_path / "a.png", "hi", size=(300, 200)))
    assert info.is_image and info.has_video and not info.has_audio
    assert (info.width, info.height) == (300, 200)


def test_probe_rotated_phone_video(tmp_path: Path) -> None:
    path = media.make_video(tmp_path / "rot.mp4", [("gradient", 0.4)], size=(320, 240), rotation=90)
    info = decode.probe(path)
    assert abs(info.rotation) == 90
    assert info.display_size == (240, 320)
    frame = decode.keyframes(path, size=None)[0]
    assert frame.image.size == (240, 320)


def test_probe_mkv_vp9_opus(tmp_path: Path) -> None:
    path = media.make_video(tmp_path / "v.webm", [("red", 1.0), ("blue", 1.0)], size=(320, 240), tone_hz=300)
    info = decode.probe(path)
    assert (info.video_codec, info.audio_codec) == ("vp9", "opus")
    assert info.duration == pytest.approx(2.0, abs=0.05)
    assert info.frame_count == pytest.approx(50, abs=1)


# --------------------------------------------------------------------------- corrupt input


def _corrupt_files(tmp_path: Path, video: Path) -> dict[str, Path]:
    return {
        "truncated_mp4": media.truncate_copy(video, tmp_path / "trunc.mp4", 0.5),
        "random_bytes": media.make_garbage_file(tmp_path / "garbage.mp4"),
        "mp4_magic_then_garbage": media.make_garbage_file(
            tmp_path / "fake.mp4", header=b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"),
        "empty": media.make_garbage_file(tmp_path / "empty.mkv", size=0),
        "not_media": _write(tmp_path / "notes.mp4", b"just some text, not a video\n" * 50),
        "missing": tmp_path / "does-not-exist.mp4",
    }


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("operation", ["probe", "extract_audio", "keyframes", "sample_frames"])
def test_corrupt_media_raises_permanent_error(tmp_path: Path, video720: Path, operation: str) -> None:
    fn = getattr(decode, operation)
    for name, path in _corrupt_files(tmp_path, video720).items():
        with pytest.raises(PermanentEngineError) as err:
            fn(path)
        assert path.name in str(err.value), name


def test_truncated_streamable_file_is_flagged(tmp_path: Path) -> None:
    full = media.make_video(tmp_path / "full.mkv", [("red", 2.0), ("blue", 2.0)], size=(320, 180))
    assert not decode.probe(full).truncated
    cut = media.truncate_copy(full, tmp_path / "cut.mkv", 0.5)
    info = decode.probe(cut)
    assert info.truncated
    assert info.decoded_end is not None and info.decoded_end < info.duration - 1.0
    # what is there still decodes
    assert decode.keyframes(cut, [2.0])[0].scene_index == 0


def test_header_only_file_raises(tmp_path: Path) -> None:
    full = media.make_video(tmp_path / "full.mkv", [("red", 2.0)], size=(320, 180))
    stub = media.truncate_copy(full, tmp_path / "stub.mkv", 0.02)
    for fn in (decode.probe, decode.keyframes):
        with pytest.raises(PermanentEngineError, match=r"stub\.mkv"):
            fn(stub)


# --------------------------------------------------------------------------- audio


def test_extract_audio_16k_mono(video720: Path) -> None:
    audio = decode.extract_audio(video720)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert len(audio) / 16000 == pytest.approx(6.0, abs=0.05)
    # stereo 0.3-amplitude tone averaged to mono: RMS 0.3/sqrt(2), no -3 dB centre-mix boost
    assert float(np.sqrt(np.mean(audio[1600:-1600] ** 2))) == pytest.approx(0.3 / np.sqrt(2), rel=0.05)
    spectrum = np.abs(np.fft.rfft(audio[:16000]))  # 1 s window: 1 Hz per bin
    assert int(np.argmax(spectrum)) == pytest.approx(440, abs=2)


def test_extract_audio_other_rate_and_cap(video720: Path) -> None:
    audio = decode.extract_audio(video720, sr=8000)
    assert len(audio) == pytest.approx(48000, abs=400)
    capped = decode.extract_audio(video720, max_seconds=1.5)
    assert len(capped) == 24000


def test_extract_audio_of_speech_wav(tmp_path: Path) -> None:
    if not media.have_espeak():
        pytest.skip("espeak-ng not installed")
    wav = media.make_speech_wav(tmp_path / "s.wav", "testing one two three")
    samples, sr = media.read_wav(wav)
    audio = decode.extract_audio(wav)
    assert len(audio) == pytest.approx(len(samples) * 16000 / sr, abs=32)
    assert float(np.abs(audio).max()) > 0.05


def test_extract_audio_without_audio_stream_is_empty(long_video: Path) -> None:
    audio = decode.extract_audio(long_video)
    assert audio.shape == (0,) and audio.dtype == np.float32


def test_extract_audio_to_wav_streams(video720: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.wav"
    seconds = decode.extract_audio_to_wav(video720, out)
    samples, sr = media.read_wav(out)
    assert sr == 16000
    assert seconds == pytest.approx(6.0, abs=0.05)
    assert len(samples) == round(seconds * 16000)
    direct = decode.extract_audio(video720)
    assert np.abs(samples - direct[: len(samples)]).max() < 2e-4


def test_extract_audio_is_aligned_to_media_start(tmp_path: Path) -> None:
    # 0.5 s of silence then a tone: the onset must stay at 0.5 s (no shift from codec delay)
    wav = media.write_wav(tmp_path / "t.wav", np.concatenate([np.zeros(8000, np.float32),
                                                              media.tone(1.0, 16000, 500)]), 16000)
    video = media.make_video(tmp_path / "a.mkv", [("red", 1.5)], size=(160, 120), audio_wav=wav)
    audio = decode.extract_audio(video)
    onset = int(np.argmax(np.abs(audio) > 0.1))
    assert onset / 16000 == pytest.approx(0.5, abs=0.03)


# --------------------------------------------------------------------------- keyframes


def test_plan_keyframes_one_per_scene_plus_long_scene_samples() -> None:
    plan = decode.plan_keyframes(30.0, [2.0, 27.0], max_interval=10.0)
    assert [s for _, s in plan] == [0, 1, 1, 1, 2]
    assert plan[0][0] == pytest.approx(1.0) and plan[-1][0] == pytest.approx(28.5)
    inner = [t for t, s in plan if s == 1]
    assert all(2.0 < t < 27.0 for t in inner)
    assert max(np.diff(inner)) <= 10.0


def test_plan_keyframes_budget_and_no_cuts() -> None:
    uniform = decode.plan_keyframes(25.0, None, max_interval=10.0)
    assert [t for t, _ in uniform] == pytest.approx([25 / 6, 12.5, 125 / 6])
    assert {s for _, s in uniform} == {0}
    plan = decode.plan_keyframes(100.0, [1.0, 2.0, 50.0], max_interval=5.0, max_frames=6)
    assert len(plan) == 6
    assert {s for _, s in plan} == {0, 1, 2, 3}  # every scene keeps one
    few = decode.plan_keyframes(100.0, [1.0, 2.0, 50.0], max_frames=2)
    assert sorted(s for _, s in few) == [2, 3]  # the two longest scenes
    assert decode.plan_keyframes(None, None) == [(0.0, 0)]


def test_keyframes_one_per_scene(video720: Path) -> None:
    frames = decode.keyframes(video720, [2.0, 4.0], size=640)
    assert [k.scene_index for k in frames] == [0, 1, 2]
    assert [k.time for k in frames] == pytest.approx([1.0, 3.0, 5.0], abs=0.05)
    assert [k.frame_index for k in frames] == pytest.approx([25, 75, 125], abs=1)
    for k, rgb in zip(frames, SCENE_RGB, strict=True):
        assert k.image.mode == "RGB" and k.image.size == (640, 360)
        assert np.abs(_mean_rgb(k.image) - rgb).max() < 12
        assert k.array.shape == (360, 640, 3)


def test_keyframes_sample_long_scene_with_exact_frames(long_video: Path) -> None:
    frames = decode.keyframes(long_video, [2.0], max_interval=5.0, size=None)
    assert [k.scene_index for k in frames] == [0, 1, 1, 1, 1, 1]
    times = [k.time for k in frames]
    assert times == sorted(times)
    assert max(np.diff(times[1:])) <= 5.0 + 1e-6
    for k in frames:
        rgb = SCENE_RGB[k.scene_index] if k.scene_index == 0 else (0, 0, 255)
        assert np.abs(_mean_rgb(k.image) - rgb).max() < 12
        # the moving square's position encodes the frame number: seeking landed on the right frame
        assert abs(_square_x(k.image, rgb) - _expected_square_x(k.frame_index)) <= 2


def test_frames_at_seeks_instead_of_decoding_from_start(long_video: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    decoded = 0
    real = decode.decode_frames

    def counting(container, stream):  # type: ignore[no-untyped-def]
        nonlocal decoded
        for frame in real(container, stream):
            decoded += 1
            yield frame

    monkeypatch.setattr(decode, "decode_frames", counting)
    (frame,) = decode.frames_at(long_video, [(22.0, 1)])
    assert frame.frame_index == 550
    assert decoded < 125  # keyframes every 5 s: decoding starts at 20 s, not at 0


def test_keyframes_respect_max_frames(long_video: Path) -> None:
    frames = decode.keyframes(long_video, [2.0], max_interval=1.0, max_frames=4, size=160)
    assert len(frames) == 4
    assert {k.scene_index for k in frames} == {0, 1}
    assert all(max(k.image.size) == 160 for k in frames)


def test_sample_frames_every_second(long_video: Path) -> None:
    frames = decode.sample_frames(long_video, 1.0, size=None)
    assert len(frames) == 25
    assert [k.frame_index for k in frames] == [25 * i for i in range(25)]
    for k in frames[::6]:
        rgb = (255, 0, 0) if k.time < 2.0 else (0, 0, 255)
        assert abs(_square_x(k.image, rgb) - _expected_square_x(k.frame_index)) <= 2


def test_sample_frames_of_still_image_and_gif(tmp_path: Path) -> None:
    still = decode.sample_frames(media.make_image(tmp_path / "a.jpg", "x", size=(200, 100)), 1.0)
    assert len(still) == 1 and still[0].image.size == (200, 100)
    gif = tmp_path / "anim.gif"
    frames = [Image.new("RGB", (64, 48), c) for c in ("red", "lime", "blue", "white")]
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=500, loop=0)
    sampled = decode.sample_frames(gif, 0.5, size=None)
    assert len(sampled) == 4
    colours = [tuple(int(v) for v in np.asarray(k.image)[24, 32]) for k in sampled]
    assert [c.index(max(c)) for c in colours[:3]] == [0, 1, 2]


# --------------------------------------------------------------------------- images


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_load_image_applies_exif_orientation(tmp_path: Path, orientation: int) -> None:
    upright = Image.open(media.make_image(tmp_path / "up.png", "Up", size=(320, 200), background="gradient"))
    path = media.make_image(tmp_path / f"o{orientation}.jpg", "Up", size=(320, 200), background="gradient",
                            exif_orientation=orientation, quality=98)
    stored = Image.open(path)
    assert stored.size != (320, 200) or orientation == 3
    loaded = decode.load_image(path)
    assert loaded.mode == "RGB" and loaded.size == (320, 200)
    assert np.abs(np.asarray(loaded, float) - np.asarray(upright.convert("RGB"), float)).mean() < 3


def test_load_image_transparency_on_white(tmp_path: Path) -> None:
    path = media.make_image(tmp_path / "t.png", "Hi", size=(100, 60), mode="RGBA", fg="black")
    image = decode.load_image(path)
    assert image.mode == "RGB"
    assert image.getpixel((2, 2)) == (255, 255, 255)
    assert np.asarray(image).min() < 50  # the black text survived


def test_load_image_corrupt(tmp_path: Path) -> None:
    good = media.make_image(tmp_path / "a.jpg", "text", size=(400, 300))
    for bad in (media.truncate_copy(good, tmp_path / "trunc.jpg", 0.4),
                media.make_garbage_file(tmp_path / "g.png", size=2000),
                tmp_path / "missing.png"):
        with pytest.raises(PermanentEngineError):
            decode.load_image(bad)


def test_a_corrupt_image_stays_a_permanent_error_after_the_yolo_runtime_is_imported(tmp_path: Path) -> None:
    """Importing ultralytics patches PIL's opener process-wide (it would raise ModuleNotFoundError for
    pi_heif on an unreadable file); the engine import undoes that."""
    from PIL import Image

    from workers.engines.detect import _import_yolo

    _import_yolo()
    assert Image.open.__module__.startswith("PIL")
    with pytest.raises(PermanentEngineError):
        decode.load_image(media.make_garbage_file(tmp_path / "g.png", size=2000))


def test_load_image_pixel_limit(tmp_path: Path) -> None:
    path = media.make_image(tmp_path / "big.png", size=(400, 300))
    assert decode.load_image(path, max_pixels=120_000).size == (400, 300)
    with pytest.raises(PermanentEngineError, match="pixel limit"):
        decode.load_image(path, max_pixels=100_000)


def test_jpeg_thumbnail() -> None:
    image = Image.new("RGB", (1280, 720), "orange")
    data = decode.jpeg_thumbnail(image, max_side=320, quality=80)
    assert data[:2] == b"\xff\xd8"
    thumb = Image.open(io.BytesIO(data))
    assert thumb.format == "JPEG" and thumb.size == (320, 180)
    small = decode.jpeg_thumbnail(np.zeros((50, 80, 3), np.uint8))
    assert Image.open(io.BytesIO(small)).size == (80, 50)  # never enlarged
    rgba = decode.jpeg_thumbnail(Image.new("RGBA", (10, 10), (0, 0, 0, 0)))
    assert Image.open(io.BytesIO(rgba)).getpixel((5, 5))[0] > 240


def test_ffmpeg_binary_agrees_on_duration(video720: Path) -> None:
    """Cross-check probe against the ffmpeg CLI when it is installed."""
    try:
        out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
                              str(video720)], capture_output=True, text=True, check=True, timeout=30)
    except (FileNotFoundError, subprocess.CalledProcessError):
        pytest.skip("ffprobe not available")
    assert float(out.stdout) == pytest.approx(decode.probe(video720).duration, abs=0.01)
