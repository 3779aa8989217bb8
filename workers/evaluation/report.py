"""The evaluation report: one self-contained HTML file (inline SVG plots, no script, no external
resource), the comparison of two runs, and the draft policy built from the suggested thresholds.

Pure functions of the results dict that :func:`workers.evaluation.run.evaluate` returns (and
``results.json`` holds), so a report can be rebuilt or compared from files alone.
"""

from __future__ import annotations

import copy
import html
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

W, H, PAD = 320, 240, 40
COLOURS = ("#1f5fbf", "#d0542c", "#2e9a4a", "#8a3ec2", "#b8860b", "#555555")
NOT_COMPARED = {"files", "sweep", "pr_curve", "roc_curve", "samples_s", "scores", "duplicate_distances",
                "settings", "confusion", "dataset"}
SECTIONS = ("speech", "ocr", "language", "scenes", "detection", "tags", "moderation", "near_duplicates", "latency")


def esc(v: Any) -> str:
    return html.escape(str(v))


def fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 1000 else f"{v:.0f}"
    return esc(v)


# --------------------------------------------------------------------------- SVG plots


def _axes(title: str, xlabel: str, ylabel: str, xmax: float, ymax: float) -> list[str]:
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" width="{W}" height="{H}" '
             f'viewBox="0 0 {W} {H}" role="img" aria-label="{esc(title)}">',
             f'<text x="{W / 2}" y="14" text-anchor="middle" font-size="12" font-weight="bold">{esc(title)}</text>',
             f'<line x1="{PAD}" y1="{H - PAD}" x2="{W - 10}" y2="{H - PAD}" stroke="#000"/>',
             f'<line x1="{PAD}" y1="{H - PAD}" x2="{PAD}" y2="24" stroke="#000"/>',
             f'<text x="{W / 2}" y="{H - 6}" text-anchor="middle" font-size="11">{esc(xlabel)}</text>',
             f'<text x="12" y="{H / 2}" text-anchor="middle" font-size="11" '
             f'transform="rotate(-90 12 {H / 2})">{esc(ylabel)}</text>']
    for frac in (0, 0.5, 1):
        x, y = _x(frac * xmax, xmax), _y(frac * ymax, ymax)
        parts.append(f'<text x="{x:.1f}" y="{H - PAD + 13}" text-anchor="middle" font-size="10">{frac * xmax:g}</text>')
        parts.append(f'<text x="{PAD - 4}" y="{y + 3:.1f}" text-anchor="end" font-size="10">{frac * ymax:g}</text>')
    return parts


def _x(v: float, xmax: float) -> float:
    return PAD + (W - PAD - 10) * (v / xmax if xmax else 0)


def _y(v: float, ymax: float) -> float:
    return H - PAD - (H - PAD - 24) * (v / ymax if ymax else 0)


def line_plot(title: str, xlabel: str, ylabel: str, series: Mapping[str, Sequence[tuple[float, float]]],
              xmax: float = 1.0, ymax: float = 1.0, diagonal: bool = False) -> str:
    """Lines through (x, y) points, one per series, with a legend."""
    parts = _axes(title, xlabel, ylabel, xmax, ymax)
    if diagonal:
        parts.append(f'<line x1="{_x(0, xmax)}" y1="{_y(0, ymax)}" x2="{_x(xmax, xmax)}" y2="{_y(ymax, ymax)}" '
                     'stroke="#bbb" stroke-dasharray="4 3"/>')
    for n, (name, pts) in enumerate(series.items()):
        colour = COLOURS[n % len(COLOURS)]
        coords = " ".join(f"{_x(x, xmax):.1f},{_y(y, ymax):.1f}" for x, y in pts)
        if coords:
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{coords}"/>')
            parts.extend(f'<circle cx="{_x(x, xmax):.1f}" cy="{_y(y, ymax):.1f}" r="2.5" fill="{colour}"/>'
                         for x, y in pts)
        parts.append(f'<text x="{W - 14}" y="{30 + 13 * n}" text-anchor="end" font-size="10" '
                     f'fill="{colour}">{esc(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def histogram(title: str, values: Sequence[float], bins: int = 12) -> str:
    """Bars of how many values fall in each of ``bins`` equal ranges (seconds)."""
    top = max(values, default=0.0) or 1.0
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, int(v / top * bins))] += 1
    ymax = max(counts, default=1) or 1
    parts = _axes(title, "seconds per call", "calls", top, ymax)
    bw = (W - PAD - 10) / bins
    for i, c in enumerate(counts):
        y = _y(c, ymax)
        parts.append(f'<rect x="{PAD + i * bw + 1:.1f}" y="{y:.1f}" width="{bw - 2:.1f}" '
                     f'height="{H - PAD - y:.1f}" fill="{COLOURS[0]}"/>')
    parts.append("</svg>")
    return "".join(parts)


def confusion_matrix(title: str, c: Mapping[str, int]) -> str:
    """2x2 matrix: rows = truth (positive, negative), columns = decision (flagged, passed)."""
    cells = (("tp", "fn"), ("fp", "tn"))
    total = max(sum(c.get(k, 0) for k in ("tp", "fp", "fn", "tn")), 1)
    size = 70
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" width="{80 + 2 * size + 10}" '
             f'height="{40 + 2 * size + 10}" role="img" aria-label="{esc(title)}">',
             f'<text x="4" y="14" font-size="12" font-weight="bold">{esc(title)}</text>',
             f'<text x="{80 + size / 2}" y="32" text-anchor="middle" font-size="10">flagged</text>',
             f'<text x="{80 + 1.5 * size}" y="32" text-anchor="middle" font-size="10">passed</text>']
    for r, (truth, row) in enumerate(zip(("labelled yes", "labelled no"), cells, strict=True)):
        y = 40 + r * size
        parts.append(f'<text x="76" y="{y + size / 2 + 4}" text-anchor="end" font-size="10">{truth}</text>')
        for col, key in enumerate(row):
            n = c.get(key, 0)
            shade = int(245 - 170 * n / total)
            good = key in ("tp", "tn")
            fill = f"rgb({shade},{245 if good else shade},{shade if good else 245})"
            parts.append(f'<rect x="{80 + col * size}" y="{y}" width="{size - 2}" height="{size - 2}" '
                         f'fill="{fill}" stroke="#888"/><text x="{80 + col * size + size / 2}" y="{y + size / 2}" '
                         f'text-anchor="middle" font-size="14">{n}</text><text x="{80 + col * size + size / 2}" '
                         f'y="{y + size / 2 + 14}" text-anchor="middle" font-size="9">{key.upper()}</text>')
    parts.append("</svg>")
    return "".join(parts)


# --------------------------------------------------------------------------- numbers


def flatten(results: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, float]]:
    """Every scalar number of a results dict as (dotted path, value); curves, samples and per-file
    rows are left out (they are not comparable one to one)."""
    for key, v in results.items():
        if key in NOT_COMPARED:
            continue
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(v, Mapping):
            yield from flatten(v, path)
        elif isinstance(v, int | float) and not isinstance(v, bool):
            yield path, float(v)


def compare(current: Mapping[str, Any], other: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every number both runs have: (metric, other run's value, this run's, delta); numbers only one
    run has are listed with the missing side ``None``. Near-duplicate sweeps compare per threshold."""
    a, b = dict(_with_sweeps(other)), dict(_with_sweeps(current))
    rows = []
    for key in sorted(a.keys() | b.keys()):
        va, vb = a.get(key), b.get(key)
        rows.append({"metric": key, "before": va, "after": vb,
                     "delta": vb - va if va is not None and vb is not None else None})
    return rows


def _with_sweeps(results: Mapping[str, Any]) -> Iterator[tuple[str, float]]:
    yield from flatten(results)
    nd = results.get("near_duplicates") or {}
    for row in nd.get("sweep", []):
        for key in ("recall", "false_matches"):
            if row.get(key) is not None:
                yield f"near_duplicates.at_{row['threshold']}.{key}", float(row[key])


def draft_rules(results: Mapping[str, Any], base_rules: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The base rules with each category's review threshold set to its suggested threshold (the block
    threshold is raised to it when below). Returns the rules and one note per change or non-change."""
    rules = copy.deepcopy(dict(base_rules))
    cats = rules.setdefault("categories", {})
    notes = []
    for category, entry in (results.get("moderation") or {}).items():
        point = (entry.get("suggested") or {}).get("point")
        threshold = (entry.get("suggested") or {}).get("threshold")
        if not entry.get("positives", 1):
            notes.append(f"{category}: no file labelled yes; unchanged")
            continue
        if point is None or threshold is None:
            notes.append(f"{category}: no threshold meets {(entry.get('suggested') or {}).get('target')}; unchanged")
            continue
        if category not in cats:
            notes.append(f"{category}: not in the base policy; left out")
            continue
        rule = cats[category]
        old = rule.get("review")
        rule["review"] = threshold
        if float(rule.get("block", 1.01)) < threshold:
            rule["block"] = threshold
        notes.append(f"{category}: review {old} → {threshold} (precision {fmt(point['precision'])}, "
                     f"recall {fmt(point['recall'])} on {entry['files']} files)")
    return rules, notes


# --------------------------------------------------------------------------- HTML


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{fmt(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _kv(entry: Mapping[str, Any], keys: Sequence[str]) -> str:
    return _table(["measure", "value"], [(k, entry.get(k)) for k in keys])


def _section(sid: str, title: str, body: str) -> str:
    return f'<section id="{sid}"><h2>{esc(title)}</h2>{body}</section>'


def _missing(results: Mapping[str, Any], key: str) -> str:
    reason = (results.get("skipped") or {}).get(key)
    if reason:
        return f"<p class=note>Skipped: {esc(reason)}</p>"
    return "<p class=note>No file in the dataset is labelled for this.</p>"


def render(results: Mapping[str, Any], comparison: Sequence[Mapping[str, Any]] | None = None,
           other_label: str = "", policy_notes: Sequence[str] = (),
           other_engines: Mapping[str, str] | None = None) -> str:
    """The whole report as one HTML document."""
    r = results
    out = []
    ds = r["dataset"]
    out.append(_section("run", "Run", _table(["", ""], [
        ("dataset", f"{ds['name']} ({ds['files']} files)"), ("created", r["created_at"]), ("machine", r["machine"]),
        ("engine set", r["engine_set"]), *[(f"engine: {k}", v) for k, v in sorted(r["engines"].items())],
        *[(f"setting: {k}", v) for k, v in r["settings"].items()],
        *[(f"skipped: {k}", v) for k, v in sorted(r["skipped"].items())]])))

    s = r.get("speech")
    speech_keys = ["files", "reference_words", "wer", "cer", "english_files", "english_normalized_wer"]
    out.append(_section("speech", "Speech to text", _kv(s, speech_keys) if s else _missing(r, "speech")))
    o = r.get("ocr")
    out.append(_section("ocr", "Text in images (OCR)",
                        _kv(o, ["files", "reference_words", "wer", "cer"]) if o else _missing(r, "ocr")))
    lang = r.get("language")
    if lang:
        found = sorted({f for row in lang["confusion"].values() for f in row})
        body = _kv(lang, ["files", "accuracy"]) + "<h3>Confusion (rows: truth, columns: detected)</h3>" + _table(
            ["truth", *found], [(t, *[row.get(f, 0) for f in found]) for t, row in lang["confusion"].items()])
    else:
        body = _missing(r, "language")
    out.append(_section("language", "Language identification", body))
    sc = r.get("scenes")
    cut_keys = ["files", "tolerance_s", "true_cuts", "found_cuts", "matched", "precision", "recall", "f1"]
    out.append(_section("scenes", "Scene cuts", _kv(sc, cut_keys) if sc else _missing(r, "scenes")))
    d = r.get("detection")
    if d:
        body = _kv(d, ["images", "iou", "true", "found", "matched", "precision", "recall", "f1", "map"]) + _table(
            ["label", "true", "found", "matched", "precision", "recall", f"AP@{d['iou']}"],
            [(k, v["true"], v["found"], v["matched"], v["precision"], v["recall"], v["ap"])
             for k, v in d["labels"].items()])
    else:
        body = _missing(r, "objects")
    out.append(_section("detection", "Object detection", body))
    t = r.get("tags")
    out.append(_section("tags", "Image tags", _kv(t, ["files", "k", f"recall_at_{t['k']}", "recall_at_1"])
                        if t else _missing(r, "tags")))

    mod = r.get("moderation")
    if mod:
        rows = [(c, e["files"], e["positives"], e["review_threshold"], e["at_review"]["precision"],
                 e["at_review"]["recall"], e["at_review"]["f1"], e["at_review"]["false_positive_rate"], e["roc_auc"],
                 (e.get("suggested") or {}).get("threshold"))
                for c, e in mod.items()]
        body = ("<p>Flagged = the category's score reaches the policy's review threshold.</p>" + _table(
            ["category", "files", "positives", "review at", "precision", "recall", "F1", "false positive rate",
             "ROC AUC", "suggested review threshold"], rows))
        for c, e in mod.items():
            sweep = e["sweep"][1:]
            body += f'<div class="cat" id="moderation-{esc(c)}"><h3>{esc(c)}</h3>'
            if not e["positives"] or not e["negatives"]:
                body += ("<p class=note>No file is labelled " + ("yes" if not e["positives"] else "no")
                         + " for this category: precision, recall and the curves need both; only the"
                         " false-positive rate (or the recall) is measured.</p>")
            body += (line_plot(f"PR {c}", "recall", "precision", {c: e["pr_curve"]})
                     + line_plot(f"ROC {c}", "false positive rate", "true positive rate", {c: e["roc_curve"]},
                                 diagonal=True)
                     + line_plot(f"Threshold sweep {c}", "threshold", "rate",
                                 {"precision": [(p["threshold"], p["precision"]) for p in sweep
                                                if p["precision"] is not None],
                                  "recall": [(p["threshold"], p["recall"]) for p in sweep if p["recall"] is not None]})
                     + confusion_matrix(f"at review {e['review_threshold']}", e["at_review"])
                     + confusion_matrix(f"at block {e['block_threshold']}", e["at_block"]) + "</div>")
        if policy_notes:
            body += "<h3>Draft policy (policy-draft.yaml)</h3><ul>" + "".join(
                f"<li>{esc(n)}</li>" for n in policy_notes) + "</ul>"
    else:
        body = _missing(r, "visual_moderation")
    out.append(_section("moderation", "Moderation per category", body))

    nd = r.get("near_duplicates")
    if nd:
        xmax = max(row["threshold"] for row in nd["sweep"]) or 1
        fm_max = max([row["false_matches"] for row in nd["sweep"]] + [1])
        body = (_kv(nd, ["images", "pairs", "other_pairs", "closest_other"])
                + f"<p>Distances of the true pairs: {esc(nd['duplicate_distances'])}</p>"
                + line_plot("Near-duplicate recall", "PDQ Hamming threshold", "recall",
                            {"recall": [(row["threshold"], row["recall"] or 0.0) for row in nd["sweep"]]}, xmax=xmax)
                + line_plot("False matches", "PDQ Hamming threshold", "pairs",
                            {"false matches": [(row["threshold"], row["false_matches"]) for row in nd["sweep"]]},
                            xmax=xmax, ymax=fm_max)
                + _table(["threshold", "recall", "matched", "pairs", "false matches", "false match rate"],
                         [(row["threshold"], row["recall"], row["matched"], row["pairs"], row["false_matches"],
                           row["false_match_rate"]) for row in nd["sweep"]]))
    else:
        body = _missing(r, "near_duplicates")
    out.append(_section("near_duplicates", "Near-duplicates (PDQ)", body))

    lat = r.get("latency") or {}
    body = _table(["engine", "calls", "total s", "mean s", "p50 s", "p95 s", "max s", "throughput /s"],
                  [(e, v["calls"], v["total_s"], v["mean_s"], v["p50_s"], v["p95_s"], v["max_s"], v["throughput_per_s"])
                   for e, v in lat.items()])
    body += "".join(histogram(f"Latency {e}", v["samples_s"]) for e, v in lat.items())
    out.append(_section("latency", "Latency and throughput per engine", body))

    if comparison is not None:
        changed = [c for c in comparison if c["delta"] is None or abs(c["delta"]) > 1e-12]
        body = f"<p>Before: {esc(other_label)}. {len(changed)} of {len(comparison)} numbers differ.</p>"
        engines = sorted(set(results["engines"]) | set(other_engines or {}))
        body += _table(["engine", "before", "after"], [
            (e, (other_engines or {}).get(e), results["engines"].get(e)) for e in engines])
        body += _table(
            ["metric", "before", "after", "delta"],
            [(c["metric"], c["before"], c["after"], c["delta"]) for c in comparison])
        out.append(_section("comparison", "Comparison with another run", body))

    nav = " · ".join(f'<a href="#{s}">{s.replace("_", " ")}</a>' for s in
                     ("run", *SECTIONS, *(("comparison",) if comparison is not None else ())))
    return ("<!doctype html><html lang=en><head><meta charset=utf-8><title>Evaluation: "
            f"{esc(ds['name'])}</title><style>{CSS}</style></head><body><h1>Evaluation: {esc(ds['name'])}</h1>"
            f"<nav>{nav}</nav>{''.join(out)}<p class=note>Every number is in results.json next to this file."
            "</p></body></html>")


CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#111}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}
th{background:#f0f0f0}.plot{margin:4px;border:1px solid #eee}.note{color:#555}.cat{margin-bottom:1em}
nav{margin-bottom:1em}@media print{nav{display:none}section{break-inside:avoid}}"""
