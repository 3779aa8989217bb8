"""YOLO detection: NudeNet's bundled ONNX as the nudity detector (onnxruntime) and as "configured"
object weights; the onnxruntime path against Ultralytics on the same weights."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workers.engines import detect
from workers.engines.base import EngineUnavailable, PermanentEngineError

EXPOSED = {label for label in detect.NUDENET_LABELS if label.endswith("_EXPOSED")} - {"FEET_EXPOSED"}


def _package_photo(package: str, relative: str) -> np.ndarray:
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.origin, f"{package} not installed"
    return np.asarray(Image.open(Path(spec.origin).parent / relative).convert("RGB"))


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    from sklearn.datasets import load_sample_images

    china, flower = load_sample_images().images
    return {
        "hopper": _package_photo("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),
        "china": china,
        "flower": flower,
        "bus": _package_photo("ultralytics", "assets/bus.jpg"),
    }


@pytest.fixture(scope="module")
def nudity() -> detect.OnnxYoloDetector:
    return detect.get_nudity_detector()


def test_the_bundled_nudity_detector_runs_on_onnxruntime(nudity):
    assert isinstance(nudity, detect.OnnxYoloDetector)


def test_onnxruntime_detections_match_ultralytics_on_the_same_weights(nudity, photos):
    ultralytics = detect.YoloDetector(detect.nudenet_weights(), name="nudity", imgsz=320, device="cpu",
                                      labels=detect.NUDENET_LABELS)
    hopper = photos["hopper"]
    images = [*photos.values(), hopper[::2, ::3], np.ascontiguousarray(hopper[:, ::-1]),
              np.asarray(Image.fromarray(hopper).resize((97, 131)))]
    ours, theirs = nudity.detect(images), ultralytics.detect(images)
    assert sum(map(len, ours)) >= 5, ours  # enough boxes for the comparison to mean something
    for a, b in zip(ours, theirs, strict=True):
        assert [d.label for d in a] == [d.label for d in b]
        for da, db in zip(a, b, strict=True):
            assert da.confidence == pytest.approx(db.confidence, abs=0.01)
            assert da.box == pytest.approx(db.box, abs=0.005)


def _faces(found: list[detect.Detection]) -> list[detect.Detection]:
    return [d for d in found if d.label == "FACE_FEMALE"]


def test_object_weights_lookup_needs_a_configured_path():
    # without MEDIAINTEL_DETECT_WEIGHTS the bundled YOLOv3-tiny runs (tests/workers/engines/test_objects.py)
    with pytest.raises(
        EngineUnavailable, match="no object-detection weights configured; set MEDIAINTEL_DETECT"
    ):
        detect.object_weights()


def test_objects_misconfigured_weights_are_permanent_errors(tmp_path):
    with pytest.raises(PermanentEngineError) as missing:
        detect.get_object_detector(tmp_path / "missing.pt")
    assert not isinstance(missing.value, EngineUnavailable)
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(PermanentEngineError):
        detect.YoloDetector(junk, name="objects", device="cpu")
    with pytest.raises(PermanentEngineError):
        detect.get_object_detector(junk)  # .onnx: onnxruntime
    with pytest.raises(PermanentEngineError):
        detect.YoloDetector(tmp_path / "weights.bin", name="objects", device="cpu")


def test_nudity_labels_come_from_the_model(nudity):
    assert len(nudity.labels) == 18
    assert tuple(nudity.labels[i] for i in range(18)) == detect.NUDENET_LABELS
    assert nudity.imgsz == 320


def test_face_found_with_normalised_box(nudity, photos):
    [found] = nudity.detect([photos["hopper"]])
    faces = _faces(found)
    assert faces and faces[0].confidence > 0.5, found
    x1, y1, x2, y2 = faces[0].box
    assert 0.0 <= x1 < x2 <= 1.0 and 0.0 <= y1 < y2 <= 1.0
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    assert 0.35 < cx < 0.65 and 0.25 < cy < 0.55  # her face: upper middle of the portrait
    assert faces[0].class_id == detect.NUDENET_LABELS.index("FACE_FEMALE")
    assert [d.confidence for d in found] == sorted((d.confidence for d in found), reverse=True)


def test_boxes_follow_the_image_when_it_moves(nudity, photos):
    hopper = photos["hopper"]
    h, w = hopper.shape[:2]
    canvas = np.full((h, 2 * w, 3), 255, np.uint8)
    canvas[:, w:] = hopper  # portrait on the right half of a white canvas
    plain, shifted = nudity.detect([hopper, canvas])
    a, b = _faces(plain)[0].box, _faces(shifted)[0].box
    assert b[0] == pytest.approx(0.5 + a[0] / 2, abs=0.03)
    assert b[2] == pytest.approx(0.5 + a[2] / 2, abs=0.03)
    assert b[1] == pytest.approx(a[1], abs=0.03)


def test_ordinary_photos_have_no_exposed_parts(nudity, photos):
    for name, found in zip(photos, nudity.detect(list(photos.values())), strict=True):
        assert not [d for d in found if d.label in EXPOSED], (name, found)


def test_colour_order_and_input_forms_agree(nudity, photos):
    rgb = photos["hopper"]
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    out = nudity.detect([rgb, Image.fromarray(rgb), rgba])
    assert out[0] == out[1] == out[2]
    # Ultralytics reads PIL images as RGB: our array path must give the same boxes
    ultralytics = detect.YoloDetector(detect.nudenet_weights(), name="nudity", imgsz=320, device="cpu")
    [direct] = ultralytics.model.predict(
        Image.fromarray(rgb), imgsz=320, conf=nudity.conf, rect=False, verbose=False
    )
    assert [round(float(c), 2) for c in direct.boxes.conf] == [round(d.confidence, 2) for d in out[0]]
    # and a channel swap really changes the result, so the check above has teeth
    [swapped] = nudity.detect([np.ascontiguousarray(rgb[:, :, ::-1])])
    assert swapped != out[0]


def test_batching_does_not_change_results(nudity, photos):
    images = list(photos.values())
    batched = nudity.detect(images, batch_size=3)
    singles = [nudity.detect([im])[0] for im in images]
    for a, b in zip(batched, singles, strict=True):
        assert [d.label for d in a] == [d.label for d in b]
        for da, db in zip(a, b, strict=True):
            assert da.confidence == pytest.approx(db.confidence, abs=1e-3)
            assert da.box == pytest.approx(db.box, abs=1e-3)
    assert nudity.detect([]) == []


def test_confidence_threshold(nudity, photos):
    images = list(photos.values())
    loose = detect.get_nudity_detector(conf=0.1)
    strict = detect.get_nudity_detector(conf=0.7)
    assert len({nudity.info.version, loose.info.version, strict.info.version}) == 3
    n_loose = sum(len(f) for f in loose.detect(images))
    n_default = sum(len(f) for f in nudity.detect(images))
    n_strict = sum(len(f) for f in strict.detect(images))
    assert n_loose > n_default >= n_strict >= 1
    for detector in (loose, strict):
        assert all(d.confidence >= detector.conf for f in detector.detect(images) for d in f)


def test_generic_runtime_with_configured_weights(tmp_path, nudity, photos):
    weights = tmp_path / "configured.onnx"
    shutil.copy(detect.nudenet_weights(), weights)
    objects = detect.get_object_detector(weights, imgsz=320)
    assert objects is not nudity
    assert objects.info.name == "objects" and objects.info.params["weights"] == str(weights)
    assert objects.labels == nudity.labels  # names read from the ONNX metadata
    [found] = detect.get_object_detector(weights, imgsz=320).detect([photos["hopper"]])
    assert found == nudity.detect([photos["hopper"]])[0]
    assert detect.detect_objects([photos["china"]], batch_size=1, weights=weights) == [
        d for d in objects.detect([photos["china"]])
    ]


def test_info(nudity):
    info = nudity.info
    assert info.name == "nudity" and info.version.startswith("320n-")
    assert info.device in {"cpu", "cuda"}
    assert info.params["imgsz"] == 320
    same = detect.engine_info("nudity", detect.nudenet_weights(), imgsz=320, device=info.device)
    assert same == info
