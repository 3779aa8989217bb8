"""Device resolution: ``cuda`` asked for on a host whose runtimes cannot reach CUDA runs on the CPU.

These tests run for real on a machine without a CUDA device (they skip where one is usable, since
the fallback cannot happen there): each engine is asked for ``cuda``, loads on ``cpu``, logs ONE
warning naming itself and the reason, records ``cpu`` as its device, and still produces output on a
tiny real input.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np
import pytest

from tests import media
from workers.engines import detect, device, nsfw, ocr, transcribe
from workers.engines.base import PermanentEngineError

WARNER = "workers.engines.device"


def _fallback_warnings(caplog: pytest.LogCaptureFixture, engine: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records
            if r.name == WARNER and r.levelno == logging.WARNING and r.getMessage().startswith(f"{engine}:")]


@pytest.fixture(autouse=True)
def fresh_probe() -> Iterator[None]:
    """Each test sees its own first warning (the once-per-process memory is reset around it)."""
    device._reset_for_tests()
    yield
    device._reset_for_tests()


def _needs_no_cuda(runtime: str) -> None:
    if device.cuda_unavailable(runtime) is None:
        pytest.skip(f"{runtime} can use CUDA here: no fallback to observe")


def test_cpu_request_is_always_cpu_and_silent(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=WARNER)
    for runtime in device.RUNTIMES:
        assert device.resolve_device("cpu", engine="x", runtime=runtime) == "cpu"
    assert not caplog.records


def test_auto_without_cuda_is_cpu_without_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    _needs_no_cuda("onnxruntime")
    caplog.set_level(logging.WARNING, logger=WARNER)
    assert device.resolve_device("auto", engine="open_nsfw", runtime="onnxruntime") == "cpu"
    assert device.resolve_device(None, engine="open_nsfw", runtime="onnxruntime") == "cpu"
    assert not caplog.records


def test_unknown_device_is_a_clear_error() -> None:
    with pytest.raises(PermanentEngineError, match=r"unknown device 'tpu'.*auto, cpu, cuda"):
        device.resolve_device("tpu", engine="x", runtime="torch")
    assert device.normalise("CUDA:1") == "cuda"
    assert device.normalise("") == "auto"


def test_cuda_fallback_warns_once_per_engine_and_reason(caplog: pytest.LogCaptureFixture) -> None:
    _needs_no_cuda("torch")
    caplog.set_level(logging.WARNING, logger=WARNER)
    for _ in range(3):
        assert device.resolve_device("cuda", engine="clip", runtime="torch") == "cpu"
    assert device.resolve_device("cuda", engine="text-embed", runtime="torch") == "cpu"
    assert len(_fallback_warnings(caplog, "clip")) == 1
    assert len(_fallback_warnings(caplog, "text-embed")) == 1
    assert "torch.cuda.is_available() is False" in _fallback_warnings(caplog, "clip")[0].getMessage()


def test_onnxruntime_reason_names_the_missing_provider() -> None:
    import onnxruntime

    _needs_no_cuda("onnxruntime")
    reason = device.cuda_unavailable("onnxruntime")
    assert reason is not None
    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        assert "no CUDAExecutionProvider" in reason and "onnxruntime-gpu" in reason
    else:  # the GPU build on a host without a device
        assert "no CUDA device is visible" in reason


def test_open_nsfw_asked_for_cuda_scores_on_cpu(caplog: pytest.LogCaptureFixture) -> None:
    _needs_no_cuda("onnxruntime")
    caplog.set_level(logging.WARNING, logger=WARNER)
    clf = nsfw.NsfwClassifier(device="cuda")
    again = nsfw.NsfwClassifier(device="cuda")
    assert clf.info.device == again.info.device == "cpu"
    assert clf._session.get_providers() == ["CPUExecutionProvider"]
    scores = clf.score([media.pattern_array("noise:3", (64, 48))])
    assert len(scores) == 1 and 0.0 <= scores[0] <= 1.0
    (warning,) = _fallback_warnings(caplog, "open_nsfw")
    assert "running on cpu" in warning.getMessage()
    # the device is not part of the version: results from either device are the same engine's
    assert clf.info.version == nsfw.NsfwClassifier(device="cpu").info.version


def test_nudenet_asked_for_cuda_detects_on_cpu(caplog: pytest.LogCaptureFixture) -> None:
    _needs_no_cuda("torch")
    caplog.set_level(logging.WARNING, logger=WARNER)
    det = detect.YoloDetector(detect.nudenet_weights(), name="nudity", imgsz=320, device="cuda",
                              labels=detect.NUDENET_LABELS)
    assert det.device == det.info.device == "cpu"
    (boxes,) = det.detect([media.pattern_array("noise:3", (320, 240))])
    assert isinstance(boxes, list)  # ran through the model; noise has no reason to hold a box
    (warning,) = _fallback_warnings(caplog, "nudity detector (320n.onnx)")
    assert "running on cpu" in warning.getMessage()


@pytest.mark.slow
def test_rapidocr_asked_for_cuda_reads_text_on_cpu(caplog: pytest.LogCaptureFixture) -> None:
    _needs_no_cuda("onnxruntime")
    caplog.set_level(logging.WARNING, logger=WARNER)
    engine = ocr.RapidOcr(device="cuda")
    assert engine.info.device == "cpu"
    assert engine.info.version == ocr.RapidOcr(device="cpu").info.version
    result = engine.read(media.make_text_image("HELLO 42", font_size=40))
    assert "HELLO" in result.text.upper(), result.text
    assert len(_fallback_warnings(caplog, "rapidocr")) == 1


def test_faster_whisper_asked_for_cuda_transcribes_on_cpu(caplog: pytest.LogCaptureFixture) -> None:
    _needs_no_cuda("ctranslate2")
    caplog.set_level(logging.WARNING, logger=WARNER)
    engine = transcribe.FasterWhisperEngine("tiny.en", device="cuda", vad=False)
    assert engine.device == engine.info.device == "cpu"
    assert engine.compute_type == engine.info.params["compute_type"] == "int8"
    samples = media.tone(2.0).astype(np.float32)
    result = engine.transcribe(samples)
    assert result.duration == pytest.approx(2.0, abs=0.01)
    (warning,) = _fallback_warnings(caplog, "faster-whisper")
    assert "ctranslate2.get_cuda_device_count() is 0" in warning.getMessage()
