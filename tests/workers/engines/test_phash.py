"""PDQ hashes on real photos shipped in installed packages (no fixtures on disk)."""

from __future__ import annotations

import importlib.util
import io
import itertools
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workers.engines import phash
from workers.engines.base import PermanentEngineError


def _package_photo(package: str, relative: str) -> np.ndarray:
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.origin, f"{package} not installed"
    return np.asarray(Image.open(Path(spec.origin).parent / relative).convert("RGB"))


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    from sklearn.datasets import load_sample_images

    china, flower = load_sample_images().images
    return {
        "china": china,
        "flower": flower,
        "bus": _package_photo("ultralytics", "assets/bus.jpg"),
        "zidane": _package_photo("ultralytics", "assets/zidane.jpg"),
        "hopper": _package_photo("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),
    }


def _jpeg_copy(image: np.ndarray, width: int, quality: int = 60) -> Image.Image:
    img = Image.fromarray(image)
    img = img.resize((width, round(img.height * width / img.width)), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue()))


def test_hash_forms_are_consistent(photos):
    h = phash.compute(photos["china"])
    assert len(h.bits) == 256 and set(h.bits) <= {"0", "1"}
    assert len(h.hex) == 64 and int(h.hex, 16) == int(h.bits, 2)
    assert 0 <= h.quality <= 100
    again = phash.PdqHash.from_hex(h.hex, h.quality)
    assert again == h
    assert phash.hamming(h.bits, h.hex) == 0
    assert phash.compute(Image.fromarray(photos["china"])) == h  # PIL and array inputs agree


def test_resized_jpeg_copy_is_within_threshold(photos):
    for name, image in photos.items():
        original = phash.compute(image)
        copy = phash.compute(_jpeg_copy(image, 320))
        assert phash.hamming(original, copy) <= phash.MATCH_THRESHOLD, name
        assert [m.index for m in phash.match(copy, [original])] == [0], name


def test_unrelated_photos_are_far_apart(photos):
    hashes = {name: phash.compute(image) for name, image in photos.items()}
    for (a, ha), (b, hb) in itertools.combinations(hashes.items(), 2):
        assert phash.hamming(ha, hb) >= 80, (a, b)
    assert phash.match(photos["china"], [hashes["flower"], hashes["bus"], hashes["zidane"]]) == []


def test_mirror_matches_only_through_dihedral_variants(photos):
    original = phash.compute(photos["china"])
    mirrored = np.ascontiguousarray(photos["china"][:, ::-1])
    assert phash.hamming(original, phash.compute(mirrored)) > phash.MATCH_THRESHOLD
    found = phash.match(mirrored, [phash.compute(photos["flower"]), original])
    assert len(found) == 1
    assert found[0].index == 1 and found[0].variant == "mirror"
    assert found[0].distance <= phash.MATCH_THRESHOLD


def test_rotated_copy_matches(photos):
    original = phash.compute(photos["bus"])
    rotated = Image.fromarray(photos["bus"]).rotate(90, expand=True)
    found = phash.match(rotated, [original])
    assert found and found[0].distance <= phash.MATCH_THRESHOLD


def test_dihedral_has_eight_variants_first_is_the_image(photos):
    variants = phash.dihedral(photos["flower"])
    assert len(variants) == 8 == len(phash.DIHEDRAL_NAMES)
    assert variants[0].bits == phash.compute(photos["flower"]).bits
    assert len({v.bits for v in variants}) == 8
    rot90 = phash.compute(np.ascontiguousarray(np.rot90(photos["flower"])))
    assert phash.hamming(rot90, variants[1]) <= 10


def test_flat_image_has_low_quality_and_never_matches():
    flat = np.full((240, 320, 3), 128, np.uint8)
    near_flat = (flat + np.random.default_rng(0).integers(0, 3, flat.shape)).astype(np.uint8)
    for image in (flat, near_flat):
        h = phash.compute(image)
        assert h.quality < phash.MIN_QUALITY
        assert phash.match(image, [h]) == []  # identical, but too weak to act on


def test_low_quality_candidates_are_skipped(photos):
    h = phash.compute(photos["zidane"])
    weak = phash.PdqHash.from_bits(h.bits, quality=10)
    assert phash.match(h, [weak]) == []
    assert phash.match(h, [weak], min_quality=0)[0].distance == 0


def test_match_orders_by_distance(photos):
    original = phash.compute(photos["hopper"])
    near = phash.compute(_jpeg_copy(photos["hopper"], 200, quality=30))
    found = phash.match(photos["hopper"], [near, phash.compute(photos["bus"]), original])
    assert [m.index for m in found] == [2, 0]
    assert found[0].distance == 0


def test_grayscale_and_rgba_inputs(photos):
    gray = np.asarray(Image.fromarray(photos["china"]).convert("L"))
    rgba = np.dstack([photos["china"], np.full(photos["china"].shape[:2], 255, np.uint8)])
    assert phash.hamming(phash.compute(gray), phash.compute(photos["china"])) <= 8
    assert phash.compute(rgba) == phash.compute(photos["china"])


def test_bad_inputs_are_permanent_errors():
    with pytest.raises(PermanentEngineError):
        phash.compute(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(PermanentEngineError):
        phash.compute(np.zeros((0, 10, 3), np.uint8))
    with pytest.raises(PermanentEngineError):
        phash.hamming("abc", "0" * 256)


def test_info():
    assert phash.info.name == "pdq"
    assert phash.info.version.startswith("pdqhash-")
