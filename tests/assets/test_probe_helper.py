"""The pre-forked probe helper: same answers as a spawned probe, same limits, killed on timeout."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import psutil
import pytest
from PIL import Image

from apps.assets import probe
from apps.assets.probe import probe_file
from apps.assets.sniff import Rejected
from tests import media


@pytest.fixture
def fresh_helpers():
    """No helper from an earlier test: each test here starts (and stops) its own."""

    def clear() -> None:
        with probe._helpers_lock:
            for h in probe._helpers.values():
                if h.owner == os.getpid():
                    h.close()
            probe._helpers.clear()
            probe._helper_failed.clear()

    clear()
    yield probe._helpers
    clear()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("probe")
    video = media.make_video(d / "clip.mp4", (("red", 1.5), ("noise", 1.5)), size=(320, 240), tone_hz=440)
    image = media.make_image(d / "photo.png", "PROBE")
    return {
        "video": video,
        "image": image,
        "audio": media.make_tone_wav(d / "tone.wav", 2.5),
        "cut_video": media.truncate_copy(video, d / "cut.mp4", keep=0.5),
        "cut_image": media.truncate_copy(media.make_image(d / "n.jpg", background="noise"), d / "cut.jpg", keep=0.4),
        "garbage": media.make_garbage_file(d / "x.mkv", header=b"\x1a\x45\xdf\xa3"),
    }


def _outcome(path: Path, kind: str):
    try:
        return probe_file(path, kind)
    except Rejected as e:
        return (e.status, e.code)


@pytest.mark.parametrize("name,kind", [("video", "video"), ("image", "image"), ("audio", "audio"),
                                       ("cut_video", "video"), ("cut_image", "image"), ("garbage", "video"),
                                       ("image", "video"), ("audio", "video")])
def test_forked_and_spawned_probes_agree(files, settings, fresh_helpers, name, kind):
    forked = _outcome(files[name], kind)
    assert set(fresh_helpers) == {"image" if kind == "image" else "av"}
    settings.MEDIAINTEL_PROBE_PREFORK = False
    spawned = _outcome(files[name], kind)
    assert forked == spawned
    if name == kind:
        assert isinstance(forked, dict) and (forked.get("width") or forked.get("sample_rate"))
    elif name in ("cut_video", "cut_image", "garbage"):
        assert isinstance(forked, tuple) and forked[0] == 422


def test_a_hanging_probe_is_killed_at_the_timeout(tmp_path, settings, fresh_helpers):
    fifo = tmp_path / "never.png"
    os.mkfifo(fifo)  # opening it for reading blocks until a writer comes: none will
    settings.MEDIAINTEL_LIMITS = {**settings.MEDIAINTEL_LIMITS, "probe_timeout_s": 1.0}
    t = time.monotonic()
    with pytest.raises(Rejected) as e:
        probe_file(fifo, "image")
    assert e.value.code == "probe_timeout" and time.monotonic() - t < 5
    helper = psutil.Process(fresh_helpers["image"].proc.pid)
    deadline = time.monotonic() + 5
    while helper.children() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert helper.children() == []  # the child was killed (and reaped)
    assert isinstance(probe_file(media.make_image(tmp_path / "ok.png", "OK"), "image"), dict)  # helper still serves


def test_the_memory_limit_applies_to_the_forked_child(tmp_path, settings, fresh_helpers):
    big = tmp_path / "big.png"
    Image.new("RGB", (8000, 6000), "white").save(big)  # 48 Mpx: ~190 MB decoded, a small file
    assert isinstance(probe_file(big, "image"), dict)
    settings.MEDIAINTEL_LIMITS = {**settings.MEDIAINTEL_LIMITS, "probe_memory_mb": 128}
    forked = _outcome(big, "image")
    settings.MEDIAINTEL_PROBE_PREFORK = False
    assert forked == _outcome(big, "image") == (413, "too_large")


def test_helper_has_a_minimal_environment_and_is_replaced_when_it_dies(files, fresh_helpers, monkeypatch):
    monkeypatch.setenv("MEDIAINTEL_SECRET_FOR_TEST", "s3cr3t")
    assert isinstance(probe_file(files["video"], "video"), dict)
    first = fresh_helpers["av"]
    env = psutil.Process(first.proc.pid).environ()
    assert "MEDIAINTEL_SECRET_FOR_TEST" not in env and "DATABASE_URL" not in env
    assert set(env) <= {"PATH", "LANG", "LC_ALL", "HOME", "PYTHONPATH", "MEDIAINTEL_MAX_PIXELS",
                        "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "LC_CTYPE"}
    first.proc.kill()
    first.proc.wait()
    assert isinstance(probe_file(files["video"], "video"), dict)
    assert fresh_helpers["av"] is not first and fresh_helpers["av"].alive()


def test_concurrent_probes_from_threads(files, fresh_helpers):
    results: list = []

    def go(name: str, kind: str) -> None:
        results.append((name, _outcome(files[name], kind)))

    jobs = [("video", "video"), ("image", "image"), ("cut_video", "video"), ("audio", "audio")] * 3
    threads = [threading.Thread(target=go, args=job) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    by_name: dict = {}
    for name, out in results:
        by_name.setdefault(name, []).append(out)
    assert len(results) == len(jobs)
    assert all(len({repr(o) for o in outs}) == 1 for outs in by_name.values())  # same answer every time
    assert by_name["cut_video"][0][1] == "corrupt" and by_name["video"][0]["width"] == 320
