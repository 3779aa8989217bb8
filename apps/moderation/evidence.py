"""What a review item's page shows about its asset, assembled from data already read: signal
summaries and colours, the timeline lanes, keyframes with their boxes and blurred faces, text with
flagged spans, hash-bank matches. Pure: no database or storage access (the reads are in
:mod:`apps.moderation.evidence_queries`); links come from :mod:`apps.assets.links`.

Invariants: every percentage (timeline markers, boxes) lies within 0–100; a marker is at least
0.6 % wide so it stays visible; highlighted text pieces concatenate back to the text.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from apps.assets import links
from apps.moderation.taxonomy import NUDITY_LABELS, TEXT_CATEGORIES, WEAPON_LABELS

GROUP_COLORS = {
    "sexual": "#c2185b", "violence": "#d84315", "hate": "#6a1b9a", "harassment": "#ef6c00",
    "profanity": "#8d6e63", "self_harm": "#283593", "spam": "#00897b", "known_bad": "#212121",
    "people": "#546e7a",
}
FACE_MARGIN = 0.12  # a blurred face box grows by this share of its size on each side (hair, chin)
NEUTRAL = "#90a4ae"
MAX_TEXT = 300_000


def color_for(code: str) -> str:
    return GROUP_COLORS.get(code.split("/", 1)[0], "#5c6bc0")


def evidence_summary(s: Any) -> str:
    """One readable line for a signal's evidence (``s``: a signal's ``source`` and ``evidence``)."""
    ev = s.evidence or {}
    if s.source == "hash":
        return f"bank {ev.get('bank', '?')} · distance {ev.get('distance', '?')}/256" + (
            f" · {ev['label']}" if ev.get("label") else "")
    if s.source == "faces":
        n = ev.get("count", 0)
        return f"{n} face{'s' if n != 1 else ''} (detected, not identified)"
    if ev.get("links"):
        return f"{len(ev['links'])} links: " + ", ".join(map(str, ev["links"][:3]))
    if ev.get("matched"):
        where = {"transcript": "speech", "ocr": "on screen", "text": "document"}.get(ev.get("text_source", ""), "")
        return f"“{ev['matched']}”" + (f" ({where}, {ev['method']})" if where and ev.get("method") else
                                        f" ({where})" if where else "")
    if ev.get("label"):
        return str(ev["label"]).lower().replace("_", " ")
    return ", ".join(f"{k} {v}" for k, v in ev.items())[:140]


def face_boxes(boxes: Any, margin: float = FACE_MARGIN) -> list[str]:
    """Stored face boxes as ``"left top right bottom"`` percentages of the image (``data-box`` for the
    blur overlay), each grown by ``margin`` of its size per side and clipped to the image; malformed
    entries are skipped. Detection only: a box says where a face is, never whose."""
    out = []
    for b in boxes if isinstance(boxes, list) else []:
        try:
            x1, y1, x2, y2 = (float(v) for v in (b.get("box") if isinstance(b, dict) else b))
        except (TypeError, ValueError):
            continue
        if not (x2 > x1 and y2 > y1):
            continue
        mx, my = (x2 - x1) * margin, (y2 - y1) * margin
        edges = (x1 - mx, y1 - my, x2 + mx, y2 + my)
        out.append(" ".join(f"{min(max(v, 0.0), 1.0) * 100:.2f}" for v in edges))
    return out


def detection_boxes(dets: Iterable[Any]) -> list[dict[str, Any]]:
    """Detections as boxes in percent: flagged ones (nudity, weapons) coloured by category; unflagged
    ones under 0.3 confidence left out; malformed boxes skipped."""
    out = []
    for d in dets:
        try:
            x1, y1, x2, y2 = (min(max(float(v), 0.0), 1.0) for v in d.box)
        except (TypeError, ValueError):
            continue
        code = NUDITY_LABELS.get(d.label) if d.detector == "nudity" else (
            "violence/weapons" if d.label.lower() in WEAPON_LABELS else None)
        if code is None and d.confidence < 0.3:
            continue
        out.append({"left": round(x1 * 100, 2), "top": round(y1 * 100, 2), "width": round((x2 - x1) * 100, 2),
                    "height": round((y2 - y1) * 100, 2), "label": d.label, "confidence": d.confidence,
                    "flagged": code is not None, "color": color_for(code) if code else NEUTRAL, "code": code})
    return out


def _placement(start: float, end: float, duration: float) -> tuple[float, float]:
    left = min(max(start / duration * 100, 0.0), 99.4)
    return round(left, 3), round(min(max((end - start) / duration * 100, 0.6), 100 - left), 3)


def timeline_duration(asset_duration: float | None, signals: Sequence[Any]) -> float:
    """The asset's duration, or (an image, a document) the end of its last timed signal, or 0."""
    timed = [s for s in signals if s.start is not None]
    return asset_duration or max([(s.end if s.end is not None else s.start) for s in timed] or [0.0])


def signal_lanes(signals: Sequence[Any], duration: float) -> list[dict[str, Any]]:
    """One lane per category (highest score first), a marker per distinct time range; the sources that
    flagged the same range are merged into one marker."""
    lanes: dict[str, dict[str, Any]] = {}
    if not duration or duration <= 0:
        return []
    seen: dict[tuple[str, float, float], dict[str, Any]] = {}
    for s in signals:
        if s.start is None:
            continue
        end = s.end if s.end is not None and s.end >= s.start else s.start
        key = (s.category_id, round(s.start, 2), round(end, 2))
        if key in seen:
            seen[key]["sources"].add(s.source)
            continue
        left, width = _placement(s.start, end, duration)
        lane = lanes.setdefault(s.category_id, {"code": s.category_id, "name": s.category.name,
                                                "color": color_for(s.category_id), "markers": [], "max": 0.0})
        marker = {"start": s.start, "end": end, "left": left, "width": width, "score": s.score,
                  "sources": {s.source}}
        seen[key] = marker
        lane["markers"].append(marker)
        lane["max"] = max(lane["max"], s.score)
    for lane in lanes.values():
        for m in lane["markers"]:
            m["sources"] = ", ".join(sorted(m["sources"]))
    return sorted(lanes.values(), key=lambda la: -la["max"])


def label_lanes(groups: Iterable[dict[str, Any]], duration: float | None, limit: int = 12) -> list[dict[str, Any]]:
    """Timeline lanes of what is seen (``groups``: labels per scene, as ``apps.insights.labels.scene_labels``
    gives them): one lane per concept, best first, a marker per scene it is in."""
    lanes: dict[str, dict[str, Any]] = {}
    for g in groups:
        if g["start"] is None or not duration or duration <= 0:
            continue
        end = g["end"] if g["end"] is not None and g["end"] >= g["start"] else g["start"]
        left, width = _placement(g["start"], end, duration)
        lane = lanes.setdefault(g["label"], {"label": g["label"], "path": " › ".join([g["label"], *g["ancestors"]]),
                                             "markers": [], "max": 0.0})
        lane["markers"].append({"start": g["start"], "end": end, "left": left, "width": width,
                                "confidence": g["confidence"], "raw": ", ".join(g["raw"])})
        lane["max"] = max(lane["max"], g["confidence"])
    return sorted(lanes.values(), key=lambda la: -la["max"])[:limit]


# ------------------------------------------------------------------ text with flagged spans
class Counter:
    """Numbers highlighted spans across the page (anchors ``hit-N``) and lists them."""

    def __init__(self) -> None:
        self.hits: list[dict[str, Any]] = []


def highlight(text: str, spans: list[dict[str, Any]], counter: Counter | None = None) -> list[dict[str, Any]]:
    """Split ``text`` into pieces; a piece covered by flagged spans carries them (overlaps allowed)."""
    n = len(text)
    cuts = sorted({0, n, *(min(max(s["start"], 0), n) for s in spans), *(min(max(s["end"], 0), n) for s in spans)})
    pieces: list[dict[str, Any]] = []
    started: set[int] = set()
    for a, b in itertools.pairwise(cuts):
        if a == b:
            continue
        covering = [s for s in spans if s["start"] <= a and s["end"] >= b]
        if not covering:
            if pieces and not pieces[-1]["flags"]:
                pieces[-1]["text"] += text[a:b]
            else:
                pieces.append({"text": text[a:b], "flags": []})
            continue
        top = max(covering, key=lambda s: s["score"])
        piece = {"text": text[a:b], "flags": covering, "color": top["color"], "depth": len(covering),
                 "title": "; ".join(f"{s['code']} {s['score']:.2f}" for s in covering), "anchor": ""}
        fresh = [s for s in covering if id(s) not in started]
        if fresh and counter is not None:
            piece["anchor"] = f"hit-{len(counter.hits) + 1}"
            for s in fresh:
                started.add(id(s))
                counter.hits.append({"anchor": piece["anchor"], "code": s["code"], "score": s["score"],
                                     "color": s["color"], "text": text[s["start"]:s["end"]][:120]})
        pieces.append(piece)
    return pieces


def text_spans(flags: Iterable[Any], signals: Iterable[Any]) -> dict[tuple[str, int | None], list[dict[str, Any]]]:
    """Flagged spans per text (``(source, row id)``; a document is ``("text", None)``), from the text
    flags and the text signals' evidence; the same span with the same category counts once."""
    spans: dict[tuple[str, int | None], list[dict[str, Any]]] = defaultdict(list)
    seen: set[tuple[Any, ...]] = set()

    def add(source: str, ref: int | None, start: int, end: int, code: str, score: float) -> None:
        key = (source, ref, start, end, code)
        if key in seen or end <= start:
            return
        seen.add(key)
        spans[(source, ref)].append({"start": int(start), "end": int(end), "code": code, "score": float(score),
                                     "color": color_for(code)})

    for f in flags:
        add(f.source, f.ref_id, f.char_start, f.char_end, TEXT_CATEGORIES.get(f.category, f.category), f.score)
    for s in signals:
        ev = s.evidence or {}
        if s.source == "text" and ev.get("char_start") is not None and ev.get("char_end") is not None:
            add(ev.get("text_source") or "text", ev.get("ref_id"), ev["char_start"], ev["char_end"],
                s.category_id, s.score)
    return spans


def _text_row(row: Any, pieces: list[dict[str, Any]]) -> dict[str, Any]:
    return {"row": row, "pieces": pieces, "hit": any(p["flags"] for p in pieces)}


# ------------------------------------------------------------------ hash-bank matches
@dataclass
class HashMatchData:
    """What was read for one hash signal: the bank entry's source asset, the keyframe of that asset
    with the entry's hash, and the source's latest decision (all None when unknown or gone)."""

    signal: Any
    source: Any = None
    source_frame: int | None = None
    source_decision: Any = None


def hash_match(asset_id: Any, asset_kind: str, m: HashMatchData) -> dict[str, Any]:
    """One hash-bank match: the two pictures side by side (this asset's frame, the source's frame)."""
    ev = m.signal.evidence or {}
    theirs = links.thumbnail_url(m.source.pk, m.source.kind, m.source_frame) if m.source is not None else None
    return {"signal": m.signal, "bank": ev.get("bank", ""), "distance": ev.get("distance"),
            "label": ev.get("label", ""), "mine": links.thumbnail_url(asset_id, asset_kind, m.signal.keyframe_index),
            "theirs": theirs, "source": m.source, "source_decision": m.source_decision}


# ------------------------------------------------------------------ the whole page
@dataclass
class EvidenceData:
    """Everything read about an asset for its review page (signals with their category, best first)."""

    asset_id: Any
    kind: str
    duration: float | None
    signals: list[Any]
    label_groups: list[dict[str, Any]] = field(default_factory=list)
    detections: list[Any] = field(default_factory=list)  # best first
    faces: dict[int | None, Any] = field(default_factory=dict)  # keyframe index (None: the image) → stored boxes
    keyframes: list[Any] = field(default_factory=list)  # in index order
    transcript: list[Any] = field(default_factory=list)
    ocr: list[Any] = field(default_factory=list)
    text_flags: list[Any] = field(default_factory=list)
    document: str | None = None
    hash_matches: list[HashMatchData] = field(default_factory=list)


def assemble(d: EvidenceData) -> dict[str, Any]:
    """The item page's evidence context; each signal gets ``color``, ``group`` and ``summary``."""
    signals = d.signals
    for s in signals:
        s.color = color_for(s.category_id)
        s.group = s.category_id.split("/", 1)[0]
        s.summary = evidence_summary(s)
    ctx: dict[str, Any] = {"signals": signals, "sensitive": any(s.group == "sexual" for s in signals)}

    duration = timeline_duration(d.duration, signals)
    ctx["duration"] = duration
    ctx["lanes"] = signal_lanes(signals, duration)
    ctx["label_lanes"] = label_lanes(d.label_groups, duration)

    # keyframes with their detections; frames with sexual signals start blurred
    detections: dict[int | None, list[Any]] = defaultdict(list)
    for det in d.detections:
        detections[det.keyframe_index].append(det)
    by_frame: dict[int, list[Any]] = defaultdict(list)
    for s in signals:
        if s.keyframe_index is not None:
            by_frame[s.keyframe_index].append(s)
    faces = {k: face_boxes(v) for k, v in d.faces.items()}
    frames = []
    for kf in d.keyframes:
        sigs = by_frame.get(kf.index, [])
        frames.append({
            "index": kf.index, "time": kf.time, "url": links.keyframe_url(d.asset_id, kf.index),
            "aspect": f"{kf.width} / {kf.height}" if kf.width and kf.height else "16 / 9",
            "sensitive": any(s.group == "sexual" for s in sigs),
            "flags": sorted({(s.category_id, s.color) for s in sigs}),
            "boxes": detection_boxes(detections.get(kf.index, [])),
            "faces": faces.get(kf.index, []),
        })
    ctx["frames"] = frames
    ctx["image_boxes"] = detection_boxes(detections.get(None, []))
    ctx["image_faces"] = faces.get(None, []) if d.kind == "image" else []
    ctx["face_total"] = len(ctx["image_faces"]) + sum(len(f["faces"]) for f in frames)

    spans = text_spans(d.text_flags, signals)
    counter = Counter()
    ctx["transcript"] = [_text_row(t, highlight(t.text, spans.get(("transcript", t.pk), []), counter))
                         for t in d.transcript]
    ctx["ocr"] = [_text_row(o, highlight(o.text, spans.get(("ocr", o.pk), []), counter)) for o in d.ocr]
    doc = d.document
    ctx["document"] = highlight(doc[:MAX_TEXT], spans.get(("text", None), []), counter) if doc is not None else None
    ctx["document_truncated"] = doc is not None and len(doc) > MAX_TEXT
    ctx["text_hits"] = counter.hits
    ctx["hash_matches"] = [hash_match(d.asset_id, d.kind, m) for m in d.hash_matches]
    return ctx
