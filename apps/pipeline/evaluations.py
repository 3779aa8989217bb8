"""Recorded evaluation runs (``manage.py evaluate``): what the console lists and serves.

Web-safe: reads the run's JSON and report text only; the evaluation itself (engines, numpy) lives
in ``workers.evaluation`` and never runs here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from apps.pipeline.models import EvaluationRun


def _get(d: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(d, dict):
            return None
        d = d.get(key)
    return d


def headline(results: dict[str, Any]) -> dict[str, float | None]:
    """The few figures a list of runs shows (None where the run had no such data)."""
    moderation = results.get("moderation") or {}
    f1s = [v for v in (_get(e, "at_review", "f1") for e in moderation.values()) if v is not None]
    tags = results.get("tags") or {}
    return {
        "speech_wer": _get(results, "speech", "wer"),
        "ocr_cer": _get(results, "ocr", "cer"),
        "language_accuracy": _get(results, "language", "accuracy"),
        "cuts_f1": _get(results, "scenes", "f1"),
        "objects_map": _get(results, "detection", "map"),
        "tags_recall": tags.get(f"recall_at_{tags.get('k')}") if tags else None,
        "moderation_macro_f1": round(sum(f1s) / len(f1s), 4) if f1s else None,
    }


def record_run(results_file: Path, *, report: Path, out_dir: Path, policy: str,
               compared_to: str | None = None) -> EvaluationRun:
    """Keep one run as written: its ``results.json``, its report and, when ``compared_to`` names a
    recorded run's folder, the link to that run."""
    results = json.loads(Path(results_file).read_text(encoding="utf-8"))
    out = str(Path(out_dir).resolve())
    earlier = None
    if compared_to:
        earlier = EvaluationRun.objects.filter(out_dir=str(Path(compared_to).resolve())).first()
    dataset = results.get("dataset") or {}
    return EvaluationRun.objects.create(
        dataset=str(dataset.get("name") or "")[:200], files=int(dataset.get("files") or 0), policy=policy[:100],
        out_dir=out[:1000], engines=results.get("engines") or {}, headline=headline(results), results=results,
        report_html=Path(report).read_text(encoding="utf-8"), compared_to=earlier)
