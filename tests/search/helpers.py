"""Helpers for search tests: assets and text chunks with real MiniLM embeddings, real-ish texts."""

from __future__ import annotations

import functools
import hashlib
import importlib
import inspect
import itertools
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from apps.assets.models import MediaAsset
from apps.insights.models import TextChunk
from apps.search.fulltext import refresh_tsv

_counter = itertools.count()


@functools.cache
def engine() -> Any:
    from workers.engines.text_embed import get_text_embedder

    return get_text_embedder()


CACHE = Path(__file__).resolve().parents[2] / "var" / "test" / "search-embeddings"


def embed(texts: Sequence[str]) -> np.ndarray:
    """MiniLM vectors; lists of more than 20 texts are cached on disk (var/test) across runs."""
    texts = list(texts)
    if len(texts) <= 20:
        return engine().embed(texts)
    key = hashlib.sha256(("\x00".join([text_engine_version(), *texts])).encode()).hexdigest()[:24]
    path = CACHE / f"{key}.npy"
    if path.exists():
        return np.load(path)
    vecs = engine().embed(texts)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, vecs)
    return vecs


@functools.cache
def text_engine_version() -> str:
    from django.conf import settings

    from mediacommon.catalog import spec_for

    return spec_for("text_embed", settings.MEDIAINTEL_STAGES).version


def make_asset(kind: str = "video", *, uploader: Any = None, moderation: str = "approved", title: str = "",
               duration: float | None = 60.0, **kw: Any) -> MediaAsset:
    n = next(_counter)
    return MediaAsset.objects.create(kind=kind, sha256=hashlib.sha256(f"search-test-{n}-{title}".encode()).hexdigest(),
                                     size=1, mime_type="video/mp4", storage_key=f"k{n}", title=title or f"asset {n}",
                                     duration=duration, uploader=uploader, moderation_state=moderation,
                                     status="ready", **kw)


def add_chunks(asset: MediaAsset, texts: Sequence[str], *, source: str = "transcript", language: str = "en",
               starts: Sequence[float] | None = None, vectors: np.ndarray | None = None) -> list[TextChunk]:
    """Chunks as the text_embed stage writes them: real embeddings, tsv per language."""
    vectors = embed(texts) if vectors is None else vectors
    rows = []
    for i, (text, vec) in enumerate(zip(texts, vectors, strict=True)):
        start = starts[i] if starts is not None else 10.0 * i
        rows.append(TextChunk(asset=asset, stage="text_embed", engine="sentence-transformers",
                              engine_version=text_engine_version(), source=source, text=text, start=start,
                              end=None if start is None else start + 8.0, language=language, embedding=vec.tolist()))
    TextChunk.objects.bulk_create(rows)
    refresh_tsv(asset.pk)
    return rows


@functools.cache
def stdlib_paragraphs(limit: int = 5000) -> tuple[str, ...]:
    """Distinct prose paragraphs from standard-library docstrings (real, varied English text)."""
    modules = ["os", "json", "re", "collections", "itertools", "functools", "pathlib", "shutil", "subprocess",
               "threading", "asyncio", "socket", "email", "http.client", "urllib.request", "logging", "argparse",
               "datetime", "decimal", "fractions", "statistics", "random", "csv", "sqlite3", "zipfile", "tarfile",
               "gzip", "hashlib", "hmac", "secrets", "ssl", "string", "textwrap", "difflib", "unittest", "doctest",
               "pdb", "inspect", "typing", "dataclasses", "enum", "contextlib", "abc", "io", "tempfile", "glob",
               "fnmatch", "pickle", "copy", "pprint", "heapq", "bisect", "array", "weakref", "types", "operator",
               "locale", "gettext", "calendar", "time", "sched", "queue", "multiprocessing", "concurrent.futures",
               "selectors", "signal", "mmap", "codecs", "unicodedata", "xml.etree.ElementTree", "html.parser",
               "mailbox", "mimetypes", "base64", "binascii", "quopri", "uuid", "ipaddress", "wave", "colorsys",
               "imaplib", "smtplib", "ftplib", "poplib", "configparser", "tomllib", "plistlib", "netrc", "shlex",
               "cmd", "tkinter", "turtle", "venv", "zipapp", "trace", "tracemalloc", "timeit", "cProfile", "ast",
               "dis", "tokenize", "keyword", "symtable", "importlib", "pkgutil", "runpy", "sysconfig", "warnings",
               "traceback", "gc", "atexit", "faulthandler", "builtins", "math", "cmath", "numbers", "struct",
               "zlib", "bz2", "lzma", "filecmp", "stat", "getpass", "curses", "platform", "errno", "ctypes"]
    seen: set[str] = set()
    out: list[str] = []
    for name in modules:
        try:
            mod = importlib.import_module(name)
        except Exception:  # noqa: S112 - optional modules (tkinter, curses) may be missing
            continue
        with warnings.catch_warnings():  # deprecated aliases (typing.io …) warn when touched
            warnings.simplefilter("ignore")
            objs = [mod, *(getattr(mod, a, None) for a in sorted(dir(mod)) if not a.startswith("_"))]
            docs = [inspect.getdoc(obj) if obj is not None else None for obj in objs]
        for doc in docs:
            if not doc:
                continue
            for para in re.split(r"\n\s*\n", doc):
                text = " ".join(para.split())
                if 80 <= len(text) <= 500 and sum(c.isalpha() for c in text) > 0.7 * len(text) and text not in seen:
                    seen.add(text)
                    out.append(text)
                    if len(out) >= limit:
                        return tuple(out)
    return tuple(out)


def scene_image(seed: int, size: tuple[int, int] = (960, 720)) -> Image.Image:
    """A photo-like synthetic scene: a gradient sky, hills and coloured shapes (distinct per seed)."""
    rng = np.random.default_rng(seed)
    w, h = size
    top, bottom = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    ramp = np.linspace(0, 1, h)[:, None, None]
    arr = (top * (1 - ramp) + bottom * ramp).repeat(w, axis=1).astype(np.uint8)
    img = Image.fromarray(arr)
    d = ImageDraw.Draw(img)
    for _ in range(3):
        y = int(rng.integers(h // 3, h))
        pts = [(x, y + int(40 * np.sin(x / rng.integers(40, 160) + rng.random() * 6))) for x in range(0, w + 20, 20)]
        d.polygon([*pts, (w, h), (0, h)], fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
    for _ in range(14):
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        r = int(rng.integers(20, 120))
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            d.ellipse((x - r, y - r, x + r, y + r), fill=color)
        else:
            d.rectangle((x - r, y - r // 2, x + r, y + r // 2), fill=color)
    return img
