"""Labelled datasets: a folder of media and ``manifest.json`` with the ground truth of every file.

The manifest (all ground-truth keys optional; a file is scored only on what it is labelled with)::

    {
      "name": "mediaintel-eval",
      "licence": "...",
      "items": [
        {"file": "speech/en-0.wav", "kind": "audio", "transcript": "...", "language": "en"},
        {"file": "slides/0.png", "kind": "image", "ocr_text": "...", "moderation": {"harassment/threat": true}},
        {"file": "video/cuts.mp4", "kind": "video", "cuts": [2.0, 4.0]},
        {"file": "photos/dog.jpg", "kind": "image", "tags": ["dog"],
         "objects": [{"label": "dog", "box": [0.16, 0.38, 0.42, 0.94]}, {"label": "bicycle"}]},
        {"file": "text/threat.txt", "kind": "text", "language": "en", "moderation": {"harassment/threat": true}}
      ],
      "near_duplicates": [["photos/dog.jpg", "near/dog-small.jpg"]]
    }

Boxes are ``[x1, y1, x2, y2]`` as fractions of the image; objects in a video carry ``start``/``end``
seconds (the frame in the middle of the range is scored). Moderation labels are taxonomy codes
mapped to true (the file belongs to the category) or false (it does not); an unlabelled category
is not scored for that file. :func:`load` checks all of this and names the first problem.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

KINDS = ("audio", "video", "image", "text")
MANIFEST = "manifest.json"


class DatasetError(ValueError):
    """The dataset cannot be read: the message names the file and the problem."""


@dataclass(frozen=True)
class ObjectLabel:
    label: str
    box: tuple[float, float, float, float] | None = None
    start: float | None = None
    end: float | None = None


@dataclass(frozen=True)
class Item:
    file: str
    kind: str
    path: Path
    transcript: str | None = None
    language: str | None = None
    ocr_text: str | None = None
    cuts: tuple[float, ...] | None = None
    objects: tuple[ObjectLabel, ...] | None = None
    tags: tuple[str, ...] | None = None
    moderation: dict[str, bool] = field(default_factory=dict)


@dataclass(frozen=True)
class Dataset:
    root: Path
    name: str
    items: tuple[Item, ...]
    near_duplicates: tuple[tuple[str, str], ...]
    licence: str = ""

    def by_file(self) -> dict[str, Item]:
        return {i.file: i for i in self.items}


def _num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _item(root: Path, raw: Any, n: int) -> Item:
    where = f"items[{n}]"
    if not isinstance(raw, dict) or not isinstance(raw.get("file"), str):
        raise DatasetError(f"{where}: needs a \"file\" path")
    where = f"{where} ({raw['file']})"
    path = (root / raw["file"]).resolve()
    if root.resolve() not in path.parents:
        raise DatasetError(f"{where}: the file must lie inside the dataset folder")
    if not path.is_file():
        raise DatasetError(f"{where}: no such file")
    kind = raw.get("kind")
    if kind not in KINDS:
        raise DatasetError(f"{where}: kind must be one of {', '.join(KINDS)}")
    for key in ("transcript", "language", "ocr_text"):
        if key in raw and not isinstance(raw[key], str):
            raise DatasetError(f"{where}: {key} must be a string")
    cuts = raw.get("cuts")
    if cuts is not None and not (isinstance(cuts, list) and all(_num(c) and c >= 0 for c in cuts)):
        raise DatasetError(f"{where}: cuts must be a list of seconds")
    tags = raw.get("tags")
    if tags is not None and not (isinstance(tags, list) and all(isinstance(t, str) for t in tags)):
        raise DatasetError(f"{where}: tags must be a list of strings")
    objects = None
    if "objects" in raw:
        if not isinstance(raw["objects"], list):
            raise DatasetError(f"{where}: objects must be a list")
        objects = []
        for o in raw["objects"]:
            if not isinstance(o, dict) or not isinstance(o.get("label"), str):
                raise DatasetError(f"{where}: every object needs a \"label\"")
            box = o.get("box")
            if box is not None and not (isinstance(box, list) and len(box) == 4 and all(_num(b) for b in box)
                                        and box[0] < box[2] and box[1] < box[3]):
                raise DatasetError(f"{where}: an object box must be [x1, y1, x2, y2] with x1 < x2, y1 < y2")
            for key in ("start", "end"):
                if key in o and not _num(o[key]):
                    raise DatasetError(f"{where}: object {key} must be seconds")
            objects.append(ObjectLabel(o["label"], tuple(box) if box else None, o.get("start"), o.get("end")))
    moderation = raw.get("moderation", {})
    if not isinstance(moderation, dict) or not all(isinstance(v, bool) for v in moderation.values()):
        raise DatasetError(f"{where}: moderation must map category codes to true or false")
    return Item(raw["file"], kind, path, raw.get("transcript"), raw.get("language"), raw.get("ocr_text"),
                tuple(float(c) for c in cuts) if cuts is not None else None,
                tuple(objects) if objects is not None else None, tuple(tags) if tags is not None else None,
                dict(moderation))


def load(folder: str | Path) -> Dataset:
    """Read and check ``folder/manifest.json`` (or a manifest path); :class:`DatasetError` names the problem."""
    p = Path(folder)
    manifest = p if p.is_file() else p / MANIFEST
    if not manifest.is_file():
        raise DatasetError(f"{manifest}: no manifest (a dataset is a folder with {MANIFEST})")
    try:
        raw = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DatasetError(f"{manifest}: not readable JSON: {e}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("items"), list) or not raw["items"]:
        raise DatasetError(f"{manifest}: needs a non-empty \"items\" list")
    root = manifest.parent
    items = tuple(_item(root, it, n) for n, it in enumerate(raw["items"]))
    files = [i.file for i in items]
    if len(set(files)) != len(files):
        raise DatasetError(f"{manifest}: a file is listed twice")
    pairs = []
    for pair in raw.get("near_duplicates", []):
        if not (isinstance(pair, list) and len(pair) == 2 and all(f in files for f in pair)):
            raise DatasetError(f"{manifest}: near_duplicates must be pairs of listed files, got {pair!r}")
        if any(next(i for i in items if i.file == f).kind != "image" for f in pair):
            raise DatasetError(f"{manifest}: near-duplicate pairs must be images, got {pair!r}")
        pairs.append((pair[0], pair[1]))
    return Dataset(root, str(raw.get("name") or root.name), items, tuple(pairs), str(raw.get("licence") or ""))
