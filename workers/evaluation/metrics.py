"""Quality measures: pure functions of ground truth and predictions (standard library only).

No Django, numpy or engine import (the English ASR normaliser, from openai-whisper, loads lazily
on first use), so the tests check every figure on hand-computed cases and
the same code scores the pipeline's engines in ``manage.py evaluate``. Invariants:

* rates are in 0..1 and a rate whose denominator is empty is ``None`` (not 0, not 1): "no data"
  is never reported as a perfect or a failed score;
* curves are lists of points sorted by threshold, so a report draws them as they come.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any


def ratio(num: float, den: float) -> float | None:
    return num / den if den else None


def f1(precision: float | None, recall: float | None) -> float | None:
    if precision is None or recall is None:
        return None
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


# --------------------------------------------------------------------------- text


def words(text: str) -> list[str]:
    """Lower-cased words (apostrophes kept), punctuation dropped."""
    return re.sub(r"[^\w']+", " ", text.lower()).split()


def edit_distance(ref: Sequence[Any], hyp: Sequence[Any]) -> int:
    """Levenshtein distance between two sequences (words or characters)."""
    row = list(range(len(hyp) + 1))
    for i in range(1, len(ref) + 1):
        diag, row[0] = row[0], i
        for j in range(1, len(hyp) + 1):
            diag, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diag + (ref[i - 1] != hyp[j - 1]))
    return row[len(hyp)]


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate: word edits / reference words (an empty reference counts as one word)."""
    ref = words(reference)
    return edit_distance(ref, words(hypothesis)) / max(len(ref), 1)


def _chars(text: str) -> str:
    return " ".join(words(text))


def cer(reference: str, hypothesis: str) -> float:
    """Character error rate on lower-cased text with punctuation dropped and spaces collapsed."""
    ref = _chars(reference)
    return edit_distance(ref, _chars(hypothesis)) / max(len(ref), 1)


def corpus_error_rates(pairs: Iterable[tuple[str, str]]) -> dict[str, float | None]:
    """WER and CER over a set: all edits / all reference words (characters), so each clip weighs
    by its length."""
    we = wn = ce = cn = 0
    for ref, hyp in pairs:
        r, h = words(ref), words(hyp)
        we, wn = we + edit_distance(r, h), wn + len(r)
        rc, hc = _chars(ref), _chars(hyp)
        ce, cn = ce + edit_distance(rc, hc), cn + len(rc)
    return {"wer": ratio(we, wn), "cer": ratio(ce, cn), "reference_words": wn}


@functools.cache
def _english_normalizer():  # type: ignore[no-untyped-def]
    from whisper.normalizers import EnglishTextNormalizer  # openai-whisper (workers image); lazy

    return EnglishTextNormalizer()


def normalized_words(text: str) -> list[str]:
    """Words after the standard English ASR normalisation (Whisper's: "nine" and "9" are one word,
    spelling variants and fillers unified), as speech-to-text is scored in the literature."""
    return words(_english_normalizer()(text))


def normalized_wer(reference: str, hypothesis: str) -> float:
    ref = normalized_words(reference)
    return edit_distance(ref, normalized_words(hypothesis)) / max(len(ref), 1)


def corpus_wer(pairs: Iterable[tuple[str, str]]) -> float:
    """English-normalised WER over a set: all edits / all reference words, so one hard clip moves
    the figure by its share only."""
    edits = total = 0
    for ref, hyp in pairs:
        r = normalized_words(ref)
        edits += edit_distance(r, normalized_words(hyp))
        total += len(r)
    return edits / max(total, 1)


def accuracy(pairs: Iterable[tuple[Any, Any]]) -> float | None:
    items = list(pairs)
    return ratio(sum(a == b for a, b in items), len(items))


# --------------------------------------------------------------------------- scene cuts


def match_times(truth: Sequence[float], found: Sequence[float], tolerance: float) -> int:
    """How many found times match a true time within ``tolerance`` seconds, one to one (greedy in time
    order, which is optimal on a line)."""
    t, f = sorted(truth), sorted(found)
    i = j = hits = 0
    while i < len(t) and j < len(f):
        if abs(t[i] - f[j]) <= tolerance:
            hits, i, j = hits + 1, i + 1, j + 1
        elif f[j] < t[i]:
            j += 1
        else:
            i += 1
    return hits


def cut_scores(pairs: Iterable[tuple[Sequence[float], Sequence[float]]], tolerance: float) -> dict[str, Any]:
    """Cut precision/recall/F1 over files: ``pairs`` of (true cut times, found cut times)."""
    tp = n_true = n_found = 0
    for truth, found in pairs:
        tp += match_times(truth, found, tolerance)
        n_true, n_found = n_true + len(truth), n_found + len(found)
    p, r = ratio(tp, n_found), ratio(tp, n_true)
    return {"tolerance_s": tolerance, "true_cuts": n_true, "found_cuts": n_found, "matched": tp,
            "precision": p, "recall": r, "f1": f1(p, r)}


# --------------------------------------------------------------------------- detection


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two ``(x1, y1, x2, y2)`` boxes."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@dataclass(frozen=True)
class Box:
    label: str
    box: tuple[float, float, float, float] | None = None
    score: float = 1.0


def _match_image(truth: Sequence[Box], found: Sequence[Box], iou_min: float) -> list[tuple[float, bool]]:
    """(score, is true positive) for every found box, best score first; a true object matches once."""
    used: set[int] = set()
    out = []
    for d in sorted(found, key=lambda b: -b.score):
        best, best_i = -1.0, -1
        for i, t in enumerate(truth):
            if i in used or t.label != d.label:
                continue
            overlap = 1.0 if t.box is None or d.box is None else iou(t.box, d.box)
            if overlap >= iou_min and overlap > best:
                best, best_i = overlap, i
        if best_i >= 0:
            used.add(best_i)
        out.append((d.score, best_i >= 0))
    return out


def average_precision(ranked: Sequence[tuple[float, bool]], positives: int) -> float | None:
    """Area under the interpolated precision-recall curve (all-point, as in VOC 2010+/COCO per class)."""
    if not positives:
        return None
    tp = 0
    points: list[tuple[float, float]] = []
    for k, (_score, hit) in enumerate(sorted(ranked, key=lambda x: -x[0]), start=1):
        tp += hit
        points.append((tp / positives, tp / k))
    ap, prev_r = 0.0, 0.0
    for i, (r, _p) in enumerate(points):
        if r > prev_r:
            ap += (r - prev_r) * max(p for _, p in points[i:])
            prev_r = r
    return ap


def detection_scores(images: Iterable[tuple[Sequence[Box], Sequence[Box]]], iou_min: float = 0.5) -> dict[str, Any]:
    """Precision and recall of found objects (a label matches a true object of that label; with boxes
    on both sides the IoU must reach ``iou_min``); per label AP and their mean (mAP@iou_min) over labels
    whose every true object has a box."""
    per_label: dict[str, dict[str, Any]] = {}
    for truth, found in images:
        for t in truth:
            e = per_label.setdefault(t.label, {"positives": 0, "ranked": [], "boxed": True})
            e["positives"] += 1
            e["boxed"] = e["boxed"] and t.box is not None
        for label in {d.label for d in found}:
            per_label.setdefault(label, {"positives": 0, "ranked": [], "boxed": True})
        for label in {b.label for b in [*truth, *found]}:
            per_label[label]["ranked"].extend(
                _match_image([t for t in truth if t.label == label], [d for d in found if d.label == label], iou_min))
    tp = sum(hit for e in per_label.values() for _, hit in e["ranked"])
    n_found = sum(len(e["ranked"]) for e in per_label.values())
    n_true = sum(e["positives"] for e in per_label.values())
    labels = {}
    for label, e in sorted(per_label.items()):
        hits = sum(hit for _, hit in e["ranked"])
        labels[label] = {"true": e["positives"], "found": len(e["ranked"]), "matched": hits,
                         "precision": ratio(hits, len(e["ranked"])), "recall": ratio(hits, e["positives"]),
                         "ap": average_precision(e["ranked"], e["positives"]) if e["boxed"] else None}
    aps = [v["ap"] for v in labels.values() if v["ap"] is not None]
    p, r = ratio(tp, n_found), ratio(tp, n_true)
    return {"iou": iou_min, "true": n_true, "found": n_found, "matched": tp, "precision": p, "recall": r,
            "f1": f1(p, r), "map": sum(aps) / len(aps) if aps else None, "labels": labels}


def tag_matches(truth: str, predicted: str) -> bool:
    """A true tag matches a predicted label when it is the label or one of its words
    ("eagle" matches "bald eagle"; case and punctuation ignored)."""
    t, p = " ".join(words(truth)), " ".join(words(predicted))
    return t == p or f" {t} " in f" {p} "


def recall_at_k(items: Iterable[tuple[Sequence[str], Sequence[str]]], k: int) -> float | None:
    """Share of true tags found among each item's top ``k`` predicted labels."""
    found = total = 0
    for truth, ranked in items:
        top = list(ranked)[:k]
        for t in truth:
            total += 1
            found += any(tag_matches(t, p) for p in top)
    return ratio(found, total)


# --------------------------------------------------------------------------- binary classification


def confusion(labels: Sequence[bool], scores: Sequence[float], threshold: float) -> dict[str, int]:
    """Counts with "flagged" = score >= threshold."""
    c = {"tp": 0, "fp": 0, "fn": 0, "tn": 0}
    for y, s in zip(labels, scores, strict=True):
        c[("tp" if y else "fp") if s >= threshold else ("fn" if y else "tn")] += 1
    return c


def binary_scores(labels: Sequence[bool], scores: Sequence[float], threshold: float) -> dict[str, Any]:
    c = confusion(labels, scores, threshold)
    p, r = ratio(c["tp"], c["tp"] + c["fp"]), ratio(c["tp"], c["tp"] + c["fn"])
    return {"threshold": threshold, **c, "precision": p, "recall": r, "f1": f1(p, r),
            "false_positive_rate": ratio(c["fp"], c["fp"] + c["tn"])}


def sweep(labels: Sequence[bool], scores: Sequence[float]) -> list[dict[str, Any]]:
    """Operating points at every distinct score (plus one above the maximum: nothing flagged),
    highest threshold first: each point's confusion counts, precision, recall, F1 and FPR."""
    cuts = sorted({float(s) for s in scores}, reverse=True)
    top = (cuts[0] if cuts else 0.0) + 1e-9
    return [binary_scores(labels, scores, t) for t in [top, *cuts]]


def pr_curve(points: Sequence[dict[str, Any]]) -> list[tuple[float, float]]:
    """(recall, precision) pairs of a :func:`sweep`, skipping points where precision is undefined."""
    return [(p["recall"], p["precision"]) for p in points if p["precision"] is not None and p["recall"] is not None]


def roc_curve(points: Sequence[dict[str, Any]]) -> list[tuple[float, float]]:
    """(false positive rate, true positive rate) pairs of a :func:`sweep`, from (0, 0)."""
    return [(p["false_positive_rate"], p["recall"]) for p in points
            if p["false_positive_rate"] is not None and p["recall"] is not None]


def auc(curve: Sequence[tuple[float, float]]) -> float | None:
    """Trapezoid area under a curve of (x, y) points (sorted by x first)."""
    pts = sorted(curve)
    if len(pts) < 2:
        return None
    return sum((x2 - x1) * (y1 + y2) / 2 for (x1, y1), (x2, y2) in itertools.pairwise(pts))


def threshold_for(points: Sequence[dict[str, Any]], *, precision: float | None = None,
                  recall: float | None = None) -> dict[str, Any] | None:
    """The operating point of a :func:`sweep` that meets a target.

    * ``precision``: the lowest threshold whose precision reaches the target (most recall at that
      precision);
    * ``recall``: the highest threshold whose recall reaches the target (fewest false positives).

    ``None`` when no threshold meets it.
    """
    if (precision is None) == (recall is None):
        raise ValueError("give exactly one of precision or recall")
    if precision is not None:
        ok = [p for p in points if p["precision"] is not None and p["precision"] >= precision and p["tp"]]
        return min(ok, key=lambda p: p["threshold"]) if ok else None
    ok = [p for p in points if p["recall"] is not None and p["recall"] >= recall]
    return max(ok, key=lambda p: p["threshold"]) if ok else None


# --------------------------------------------------------------------------- near duplicates


def near_duplicate_sweep(distances: dict[tuple[str, str], int], duplicates: Iterable[tuple[str, str]],
                         thresholds: Iterable[int]) -> list[dict[str, Any]]:
    """Per Hamming threshold: recall of the true duplicate pairs and the false matches (other pairs
    within the threshold). ``distances`` holds every unordered pair once, keyed by sorted names."""
    truth = {tuple(sorted(p)) for p in duplicates}
    others = len(distances) - len(truth & distances.keys())
    rows = []
    for t in thresholds:
        hit = sum(1 for p in truth if p in distances and distances[p] <= t)
        false = sum(1 for p, d in distances.items() if p not in truth and d <= t)
        rows.append({"threshold": t, "recall": ratio(hit, len(truth)), "matched": hit, "pairs": len(truth),
                     "false_matches": false, "false_match_rate": ratio(false, others)})
    return rows


# --------------------------------------------------------------------------- speed


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0..100)."""
    if not values:
        return None
    v = sorted(values)
    pos = (len(v) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def latency_stats(seconds: Sequence[float], units: int | None = None) -> dict[str, Any]:
    """Per-call latency summary and throughput (calls, or ``units`` such as files, per busy second)."""
    total = sum(seconds)
    return {"calls": len(seconds), "total_s": total, "mean_s": ratio(total, len(seconds)),
            "p50_s": percentile(seconds, 50), "p95_s": percentile(seconds, 95),
            "max_s": max(seconds) if seconds else None,
            "throughput_per_s": ratio(units if units is not None else len(seconds), total)}
