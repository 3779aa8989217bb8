"""A labelled set of real photos for the object detector: the Darknet sample photos (Debian ``darknet``)
and views generated from them (mirror, scales, a centre crop, a low-quality JPEG).

Labels are image-level COCO classes, what a person sees in each photo (the detector is judged on
whether it names what is there, and only that). ``scream.jpg`` (a painting) is a negative.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps

DARKNET_DATA = Path("/usr/share/darknet/data")

PHOTOS: dict[str, frozenset[str]] = {
    "dog.jpg": frozenset({"dog", "bicycle", "truck"}),
    "eagle.jpg": frozenset({"bird"}),
    "giraffe.jpg": frozenset({"giraffe", "zebra"}),
    "horses.jpg": frozenset({"horse"}),
    "person.jpg": frozenset({"person", "dog", "horse"}),
    "kite.jpg": frozenset({"person", "kite"}),
    "scream.jpg": frozenset(),
}


def _jpeg(im: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def _scale(f: float) -> Callable[[Image.Image], Image.Image]:
    return lambda im: im.resize((max(1, round(im.width * f)), max(1, round(im.height * f))), Image.BILINEAR)


def _centre_crop(im: Image.Image, keep: float = 0.9) -> Image.Image:
    w, h = im.size
    dx, dy = round(w * (1 - keep) / 2), round(h * (1 - keep) / 2)
    return im.crop((dx, dy, w - dx, h - dy))


VIEWS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "original": lambda im: im,
    "mirror": ImageOps.mirror,
    "half": _scale(0.5),
    "x1.5": _scale(1.5),
    "crop90": _centre_crop,
    "jpeg30": lambda im: _jpeg(im, 30),
}


def available() -> bool:
    return all((DARKNET_DATA / name).is_file() for name in PHOTOS)


def photo(name: str) -> Image.Image:
    return Image.open(DARKNET_DATA / name).convert("RGB")


def labelled_set() -> list[tuple[str, Image.Image, frozenset[str]]]:
    """``(photo/view, image, expected labels)`` for every photo and generated view."""
    out = []
    for name, labels in PHOTOS.items():
        im = photo(name)
        for view, make in VIEWS.items():
            out.append((f"{name}/{view}", make(im), labels))
    return out


def per_class(expected: Iterable[frozenset[str]], found: Iterable[set[str]]) -> dict[str, dict[str, Any]]:
    """Image-level precision and recall per class: ``{label: {tp, fp, fn, precision, recall}}``.

    Precision is None for a class never predicted, recall None for a class never expected.
    """
    counts: dict[str, list[int]] = {}
    for want, got in zip(expected, found, strict=True):
        for label in want | got:
            c = counts.setdefault(label, [0, 0, 0])
            c[0 if label in want and label in got else 1 if label in got else 2] += 1
    return {label: {"tp": tp, "fp": fp, "fn": fn,
                    "precision": tp / (tp + fp) if tp + fp else None,
                    "recall": tp / (tp + fn) if tp + fn else None}
            for label, (tp, fp, fn) in sorted(counts.items())}
