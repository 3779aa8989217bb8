"""Run an engine set over a labelled dataset and score it: one JSON-ready dict of every number.

Each item is scored only on what it is labelled with. Every engine call is timed (latency and
throughput per engine). Moderation scores per category follow the policy engine: per file, the
strongest signal of the category weighted by the policy's source weight (capped at 1); a file
with no signal scores 0. Decisions (flag = score >= the policy's review threshold) give the
confusion matrices; the sweeps give PR and ROC curves and the threshold that meets a target.
"""

from __future__ import annotations

import datetime as dt
import platform
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from itertools import combinations
from typing import Any, TypeVar

from workers.evaluation import metrics as m
from workers.evaluation.dataset import Dataset, Item
from workers.evaluation.engines import EngineUnavailable, Signal

T = TypeVar("T")
PDQ_THRESHOLDS = (0, 8, 16, 24, 31, 40, 48, 56, 64, 80, 96, 112, 128)


class Timer:
    """Seconds per call, per engine."""

    def __init__(self) -> None:
        self.calls: dict[str, list[float]] = defaultdict(list)

    def __call__(self, engine: str, fn: Callable[..., T], *args: Any) -> T:
        t0 = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self.calls[engine].append(time.perf_counter() - t0)


def _hamming(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def _text_of(item: Item) -> str:
    return item.path.read_text(encoding="utf-8", errors="replace")


def category_scores(signals: list[Signal], rules: Mapping[str, Any]) -> dict[str, float]:
    """Per category the strongest weighted signal (as apps.moderation.policy.evaluate weighs them)."""
    cats = rules.get("categories", {})
    out: dict[str, float] = {}
    for category, score, source in signals:
        weight = float(cats.get(category, {}).get("weights", {}).get(source, 1.0))
        out[category] = max(out.get(category, 0.0), min(1.0, score * weight))
    return out


def evaluate(dataset: Dataset, engines: Any, *, rules: Mapping[str, Any], cut_tolerance: float = 0.5,
             iou: float = 0.5, k: int = 5, target_precision: float | None = 0.9,
             target_recall: float | None = None, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Every metric of ``engines`` on ``dataset`` (see the module docstring); ``progress`` gets one line per file."""
    timer = Timer()
    skipped: dict[str, str] = {}
    per_file: list[dict[str, Any]] = []
    transcripts: list[tuple[str, str]] = []
    speech_langs: list[str | None] = []
    ocr_pairs: list[tuple[str, str]] = []
    languages: list[tuple[str, str]] = []
    cuts: list[tuple[tuple[float, ...], list[float]]] = []
    detections: list[tuple[list[m.Box], list[m.Box]]] = []
    tags: list[tuple[tuple[str, ...], list[str]]] = []
    moderation: dict[str, list[tuple[bool, float]]] = defaultdict(list)
    hashes: dict[str, str] = {}
    dup_files = {f for pair in dataset.near_duplicates for f in pair}

    def attempt(section: str, engine: str, fn: Callable[..., T], *args: Any) -> T | None:
        if section in skipped:
            return None
        try:
            return timer(engine, fn, *args)
        except EngineUnavailable as e:
            skipped[section] = str(e)
            timer.calls[engine].pop()  # a refusal is not a latency sample
            if not timer.calls[engine]:
                del timer.calls[engine]
            return None

    for item in dataset.items:
        row: dict[str, Any] = {"file": item.file, "kind": item.kind}
        text = ""
        if item.kind in ("audio", "video") and (item.transcript is not None or item.language):
            heard = attempt("speech", "transcribe", engines.transcribe, item)
            if heard is not None:
                text, lang = heard
                row.update(transcript=text, language=lang)
                if item.transcript is not None:
                    transcripts.append((item.transcript, text))
                    speech_langs.append(item.language)
                    row["wer"], row["cer"] = m.wer(item.transcript, text), m.cer(item.transcript, text)
                if item.language:
                    languages.append((item.language, lang))
        if item.kind == "text":
            text = _text_of(item)
            if item.language:
                lang = attempt("language", "language", engines.language, item, text)
                if lang is not None:
                    row["language"] = lang
                    languages.append((item.language, lang))
        if item.kind == "image" and (item.ocr_text is not None or item.moderation):
            seen = attempt("ocr", "ocr", engines.ocr, item)
            if seen is not None:
                text = seen
                row["ocr_text"] = seen
                if item.ocr_text is not None:
                    ocr_pairs.append((item.ocr_text, seen))
                    row["ocr_cer"] = m.cer(item.ocr_text, seen)
        if item.kind == "video" and item.cuts is not None:
            found = attempt("scenes", "scenes", engines.scenes, item)
            if found is not None:
                cuts.append((item.cuts, found))
                row["cuts"] = found
        if item.objects is not None:
            frames = _frames(item, engines)
            for truth, image in frames:
                found_boxes = attempt("objects", "objects", engines.objects, item, image)
                if found_boxes is not None:
                    detections.append(([m.Box(o.label, o.box) for o in truth], found_boxes))
                    row.setdefault("objects", []).extend(
                        {"label": b.label, "score": round(b.score, 4), "box": b.box} for b in found_boxes)
        if item.tags is not None:
            ranked = attempt("tags", "tags", engines.tags, item)
            if ranked is not None:
                tags.append((item.tags, ranked))
                row["tags"] = ranked[:k]
        if item.moderation:
            signals: list[Signal] = []
            if item.kind == "image":
                signals += attempt("visual_moderation", "visual_moderation", engines.visual_signals, item,
                                   engines.image(item)) or []
            elif item.kind == "video":
                image = engines.frame_at(item, 0.0)
                signals += attempt("visual_moderation", "visual_moderation", engines.visual_signals, item, image) or []
            if text.strip():
                signals += attempt("text_moderation", "text_moderation", engines.text_signals, item, text) or []
            scores = category_scores(signals, rules)
            row["moderation"] = {c: round(scores.get(c, 0.0), 4) for c in item.moderation}
            for category, truth in item.moderation.items():
                moderation[category].append((truth, scores.get(category, 0.0)))
        if item.file in dup_files:
            h = attempt("near_duplicates", "phash", engines.phash, item)
            if h is not None:
                hashes[item.file] = h
        per_file.append(row)
        if progress:
            progress(f"{item.file}: {', '.join(k for k in row if k not in ('file', 'kind')) or 'nothing labelled'}")

    out: dict[str, Any] = {
        "dataset": {"name": dataset.name, "root": str(dataset.root), "files": len(dataset.items),
                    "licence": dataset.licence},
        "engine_set": getattr(engines, "name", type(engines).__name__),
        "engines": engines.versions() if hasattr(engines, "versions") else {},
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.node()} {platform.machine()} {platform.processor() or ''}".strip(),
        "settings": {"cut_tolerance_s": cut_tolerance, "iou": iou, "k": k, "target_precision": target_precision,
                     "target_recall": target_recall},
        "skipped": skipped,
    }
    rates = m.corpus_error_rates(transcripts)
    english = [(ref, hyp) for (ref, hyp), lang in zip(transcripts, speech_langs, strict=True) if lang in ("en", None)]
    out["speech"] = ({**rates, "files": len(transcripts), "english_files": len(english),
                      "english_normalized_wer": m.corpus_wer(english) if english else None} if transcripts else None)
    ocr = m.corpus_error_rates(ocr_pairs)
    out["ocr"] = {**ocr, "files": len(ocr_pairs)} if ocr_pairs else None
    out["language"] = ({"accuracy": m.accuracy(languages), "files": len(languages),
                        "confusion": _label_confusion(languages)} if languages else None)
    out["scenes"] = {**m.cut_scores(cuts, cut_tolerance), "files": len(cuts)} if cuts else None
    out["detection"] = {**m.detection_scores(detections, iou), "images": len(detections)} if detections else None
    out["tags"] = ({"k": k, f"recall_at_{k}": m.recall_at_k(tags, k), "recall_at_1": m.recall_at_k(tags, 1),
                    "files": len(tags)} if tags else None)
    out["moderation"] = _moderation(moderation, rules, target_precision, target_recall) if moderation else None
    out["near_duplicates"] = _near_duplicates(hashes, dataset.near_duplicates) if hashes else None
    units = {"transcribe": len(transcripts)}
    out["latency"] = {e: {**m.latency_stats(s, units.get(e)), "samples_s": [round(x, 5) for x in s]}
                      for e, s in sorted(timer.calls.items())}
    out["files"] = per_file
    return out


def _frames(item: Item, engines: Any) -> list[tuple[list[Any], Any]]:
    """(true objects, image) to detect on: the image, or for a video one frame per labelled time."""
    objects = item.objects or ()
    if item.kind == "image":
        return [(list(objects), engines.image(item))]
    if item.kind != "video":
        return []
    by_time: dict[float, list[Any]] = defaultdict(list)
    for o in objects:
        if o.start is not None:
            by_time[round(((o.start or 0.0) + (o.end if o.end is not None else o.start)) / 2, 3)].append(o)
    return [(truth, engines.frame_at(item, t)) for t, truth in sorted(by_time.items())]


def _label_confusion(pairs: list[tuple[str, str]]) -> dict[str, dict[str, int]]:
    table: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for truth, found in pairs:
        table[truth][found] += 1
    return {t: dict(row) for t, row in sorted(table.items())}


def _moderation(data: Mapping[str, list[tuple[bool, float]]], rules: Mapping[str, Any],
                target_precision: float | None, target_recall: float | None) -> dict[str, Any]:
    out = {}
    cats = rules.get("categories", {})
    for category, pairs in sorted(data.items()):
        labels = [t for t, _ in pairs]
        scores = [s for _, s in pairs]
        points = m.sweep(labels, scores)
        pr, roc = m.pr_curve(points), m.roc_curve(points)
        rule = cats.get(category, {})
        review = float(rule.get("review", 1.01))
        block = float(rule.get("block", 1.01))
        entry: dict[str, Any] = {
            "files": len(pairs), "positives": sum(labels), "negatives": len(labels) - sum(labels),
            "in_policy": category in cats, "review_threshold": review, "block_threshold": block,
            "at_review": m.binary_scores(labels, scores, review), "at_block": m.binary_scores(labels, scores, block),
            "pr_curve": pr, "roc_curve": roc, "roc_auc": m.auc(roc) if sum(labels) and len(labels) - sum(labels)
            else None, "sweep": points, "scores": [{"label": t, "score": round(s, 4)} for t, s in pairs],
        }
        if target_precision is not None or target_recall is not None:
            point = (m.threshold_for(points, precision=target_precision) if target_precision is not None
                     else m.threshold_for(points, recall=target_recall))
            target = (f"precision >= {target_precision}" if target_precision is not None
                      else f"recall >= {target_recall}")
            entry["suggested"] = {"target": target, "point": point,
                                  "threshold": _with_margin(point["threshold"], scores) if point else None}
        out[category] = entry
    return out


def _with_margin(threshold: float, scores: list[float]) -> float:
    """Halfway down to the next lower score seen: the same files are flagged, with a margin on both
    sides instead of a threshold sitting exactly on a file's score."""
    lower = max((s for s in scores if s < threshold), default=None)
    return round(min(1.0, threshold if lower is None else (threshold + lower) / 2), 4)


def _near_duplicates(hashes: dict[str, str], pairs: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    distances = {tuple(sorted((a, b))): _hamming(hashes[a], hashes[b]) for a, b in combinations(sorted(hashes), 2)}
    truth = [p for p in pairs if p[0] in hashes and p[1] in hashes]
    rows = m.near_duplicate_sweep(distances, truth, PDQ_THRESHOLDS)  # type: ignore[arg-type]
    return {"images": len(hashes), "pairs": len(truth), "other_pairs": len(distances) - len(truth),
            "sweep": rows, "duplicate_distances": sorted(distances[tuple(sorted(p))] for p in truth),  # type: ignore[index]
            "closest_other": min((d for p, d in distances.items()
                                  if p not in {tuple(sorted(t)) for t in truth}), default=None)}
