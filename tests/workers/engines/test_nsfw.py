"""open_nsfw scores: ordinary photos low, a crude synthetic nude sketch high, batching consistent."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from workers.engines import nsfw
from workers.engines.base import PermanentEngineError


def _package_photo(package: str, relative: str) -> np.ndarray:
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.origin, f"{package} not installed"
    return np.asarray(Image.open(Path(spec.origin).parent / relative).convert("RGB"))


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    from sklearn.datasets import load_sample_images

    return [
        *load_sample_images().images,
        _package_photo("ultralytics", "assets/bus.jpg"),
        _package_photo("ultralytics", "assets/zidane.jpg"),
        _package_photo("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),
    ]


@pytest.fixture(scope="module")
def classifier() -> nsfw.NsfwClassifier:
    return nsfw.get_classifier()


def _sketch() -> Image.Image:
    """Blurred skin-tone drawing of a bare chest: a positive control that the model really runs."""
    img = Image.new("RGB", (256, 256), (230, 200, 180))
    draw = ImageDraw.Draw(img)
    for x in (60, 130):
        draw.ellipse((x, 60, x + 70, 130), fill=(210, 150, 130))
        draw.ellipse((x + 25, 85, x + 45, 105), fill=(150, 80, 70))
    return img.filter(ImageFilter.GaussianBlur(6))


def test_ordinary_photos_score_low(classifier, photos):
    scores = classifier.score(photos)
    assert len(scores) == len(photos)
    assert all(0.0 <= s < 0.3 for s in scores), scores


def test_synthetic_positive_control_scores_high(classifier, photos):
    [score] = classifier.score([_sketch()])
    assert score > 0.5
    assert score > max(classifier.score(photos)) + 0.3


def test_batches_match_single_images(classifier, photos):
    batch = classifier.score(photos, batch_size=2)  # several chunks, one partial
    singles = [classifier.score([p])[0] for p in photos]
    np.testing.assert_allclose(batch, singles, atol=1e-4)
    assert classifier.score([]) == []


def test_pil_gray_and_rgba_inputs(classifier, photos):
    rgb = photos[0]
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    gray = Image.fromarray(rgb).convert("L")
    scores = classifier.score([rgb, Image.fromarray(rgb), rgba, gray])
    assert scores[0] == pytest.approx(scores[1], abs=1e-6) == pytest.approx(scores[2], abs=1e-6)
    assert 0.0 <= scores[3] <= 1.0
    with pytest.raises(PermanentEngineError):
        classifier.score([np.zeros((8, 8, 3), np.float64)])


def test_module_level_score_uses_cached_engine(classifier, photos):
    assert nsfw.get_classifier() is classifier
    assert nsfw.score(photos[:1]) == classifier.score(photos[:1])


def test_configured_weights_path(tmp_path, classifier, photos):
    copy = tmp_path / "nsfw-copy.onnx"
    shutil.copy(nsfw.bundled_weights(), copy)
    assert nsfw.resolve_weights(copy) == copy
    configured = nsfw.get_classifier(copy)
    assert configured is not classifier
    assert configured.info.version == classifier.info.version  # same bytes, same version
    assert configured.score(photos[:1]) == pytest.approx(classifier.score(photos[:1]), abs=1e-6)


def test_bad_weights_are_permanent_errors(tmp_path):
    with pytest.raises(PermanentEngineError):
        nsfw.get_classifier(tmp_path / "missing.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(PermanentEngineError):
        nsfw.NsfwClassifier(junk, "cpu")


def test_info(classifier):
    info = classifier.info
    assert info.name == "open_nsfw"
    assert info.version.startswith("opennsfw-")
    assert info.device in {"cpu", "cuda"}
    assert nsfw.engine_info().version == info.version
