"""Turning an asset's insights (and hash-bank matches) into moderation signals."""

from __future__ import annotations

from typing import Any

from apps.insights import models as im
from apps.moderation import bankmatch
from apps.moderation.models import HashBank
from apps.moderation.taxonomy import (
    FACE_COUNT,
    FACE_PRESENCE,
    FACES_PER_FULL_SCORE,
    NSFW_SIGNAL_FLOOR,
    NUDITY_LABELS,
    PEOPLE_FULL_COUNT,
    TEXT_CATEGORIES,
    URL,
    WEAPON_LABELS,
)
from mediacommon.vocabulary import WEAPON_ADJACENT, canonical


def _row(category: str, score: float, source: str, insight: Any, **evidence: Any) -> dict[str, Any]:
    return {"category_id": category, "score": round(float(score), 4), "source": source,
            "engine": insight.engine, "engine_version": insight.engine_version,
            "start": insight.start, "end": insight.end,
            "keyframe_index": getattr(insight, "keyframe_index", None), "evidence": evidence}


def collect(asset_id: Any) -> list[dict[str, Any]]:
    """Every signal the asset's current insights support (rows for ``Signal``)."""
    out: list[dict[str, Any]] = []
    for n in im.NsfwScore.objects.filter(asset_id=asset_id):
        if n.score >= NSFW_SIGNAL_FLOOR:
            out.append(_row("sexual/explicit_nudity", n.score, "nsfw", n, model="open_nsfw"))
    people: dict[int | None, list[im.Detection]] = {}
    for d in im.Detection.objects.filter(asset_id=asset_id):
        if d.detector == "nudity" and d.label in NUDITY_LABELS:
            out.append(_row(NUDITY_LABELS[d.label], d.confidence, "nudity", d, label=d.label, box=d.box))
        elif d.detector == "objects" and d.label.lower() in WEAPON_LABELS:
            out.append(_row("violence/weapons", d.confidence, "objects", d, label=d.label, box=d.box))
        elif d.detector == "objects" and canonical(d.label) in WEAPON_ADJACENT:
            # knife, scissors, baseball bat: own source so a policy can weight them apart from guns
            out.append(_row("violence/weapons", d.confidence, "objects_adjacent", d, label=d.label, box=d.box))
        elif d.detector == "objects" and canonical(d.label) == "person":
            people.setdefault(d.keyframe_index, []).append(d)
    for persons in people.values():  # one signal per frame: the count of persons in it
        best = max(persons, key=lambda p: p.confidence)
        out.append(_row("context/people", min(1.0, len(persons) / PEOPLE_FULL_COUNT), "objects", best,
                        count=len(persons), boxes=[p.box for p in persons]))
    out.extend(face_signals(asset_id))
    for f in im.TextSpanFlag.objects.filter(asset_id=asset_id):
        code = TEXT_CATEGORIES.get(f.category)
        if code:
            out.append(_row(code, f.score, "text", f, text_source=f.source, ref_id=f.ref_id, char_start=f.char_start,
                            char_end=f.char_end, matched=f.matched, method=f.method))
    out.extend(_link_signals(asset_id))
    out.extend(hash_matches(asset_id))
    return out


def face_signals(asset_id: Any) -> list[dict[str, Any]]:
    """Per frame with faces: presence (score = best face's confidence) and count (score = count ÷ 10,
    capped at 1), with the count and boxes as evidence. Frames without faces give no signal."""
    rows = []
    for f in im.FaceFrame.objects.filter(asset_id=asset_id, count__gt=0).order_by("keyframe_index", "id"):
        best = max((float(b.get("confidence", 0.0)) for b in f.boxes), default=0.0)
        boxes = [b.get("box") for b in f.boxes]
        rows.append(_row(FACE_PRESENCE, best, "faces", f, count=f.count, boxes=boxes))
        rows.append(_row(FACE_COUNT, min(1.0, f.count / FACES_PER_FULL_SCORE), "faces", f, count=f.count))
    return rows


def _link_signals(asset_id: Any) -> list[dict[str, Any]]:
    rows = []
    for c in im.TextChunk.objects.filter(asset_id=asset_id, source__in=["text", "ocr", "transcript"]):
        links = URL.findall(c.text)
        if len(links) >= 2:
            rows.append(_row("spam/links", min(1.0, 0.3 * len(links)), "text", c, links=links[:10],
                             text_source=c.source))
    return rows


def hash_matches(asset_id: Any) -> list[dict[str, Any]]:
    """PDQ hashes of the asset within an enabled block bank's threshold, unless an allow bank matches too.

    The entries come from :func:`apps.moderation.bankmatch.match` (exact: every entry within its
    bank's threshold, none beyond).
    """
    banks = {b.pk: b for b in HashBank.objects.filter(enabled=True)}
    if not banks:
        return []
    hashes = list(im.PerceptualHash.objects.filter(asset_id=asset_id))
    rows: list[dict[str, Any]] = []
    for h, found in zip(hashes, bankmatch.match([h.hash for h in hashes]), strict=True):
        allow = [f for f in found if banks.get(f["bank_id"]) and banks[f["bank_id"]].kind == HashBank.Kind.ALLOW]
        if allow:
            continue
        for f in found:
            bank = banks.get(f["bank_id"])
            if bank is None or bank.kind != HashBank.Kind.BLOCK:
                continue
            if h.quality >= bank.min_quality and f["quality"] >= bank.min_quality:
                rows.append(_row("known_bad/hash_match", 1.0 - f["distance"] / 256, "hash", h, bank=bank.name,
                                 entry_id=f["id"], distance=f["distance"], label=f["label"],
                                 source_asset=str(f["source_asset_id"]) if f["source_asset_id"] else None))
                break
    return rows
