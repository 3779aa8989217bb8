"""A run on disk: ``results.json`` (every number), ``report.html`` (self-contained) and
``policy-draft.yaml`` (importable with ``manage.py policy import``).

Writing never overwrites another run's comparison input: ``--compare`` reads the other run's
``results.json`` before anything is written.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from apps.moderation.policy import validate_rules
from apps.moderation.taxonomy import TAXONOMY
from workers.evaluation import report

RESULTS, REPORT, DRAFT = "results.json", "report.html", "policy-draft.yaml"


class RunError(ValueError):
    """A run folder cannot be read or written; the message names it."""


@dataclass(frozen=True)
class Written:
    results: Path
    report: Path
    draft: Path | None
    notes: list[str]
    comparison: list[dict[str, Any]] | None


def load_results(run_dir: str | Path) -> dict[str, Any]:
    p = Path(run_dir)
    p = p if p.is_file() else p / RESULTS
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RunError(f"{p}: not an evaluation run ({e})") from None
    if not isinstance(data, dict) or "dataset" not in data:
        raise RunError(f"{p}: not an evaluation run (no dataset)")
    return data


def write(out_dir: str | Path, results: Mapping[str, Any], *, base_rules: Mapping[str, Any],
          policy_name: str = "default", other: Mapping[str, Any] | None = None, other_label: str = "") -> Written:
    """Write the run; the draft policy only when a category has a suggested threshold."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RunError(f"cannot create {out}: {e.strerror or e}") from None
    comparison = report.compare(results, other) if other is not None else None
    rules, notes = report.draft_rules(results, base_rules) if results.get("moderation") else (None, [])
    draft = None
    if rules is not None and any("→" in n for n in notes):
        problems, unknown = validate_rules(rules, [code for code, *_ in TAXONOMY])
        problems += [f"unknown category {code!r}" for code in unknown]
        if problems:
            notes.append("draft not written: " + "; ".join(problems))
        else:
            draft = out / DRAFT
            doc = {"policy": policy_name, "note": f"draft from evaluation on {results['dataset']['name']} "
                                                  f"({results['created_at']})"[:300], "rules": rules}
            draft.write_text("# Draft from manage.py evaluate. Review, then `manage.py policy import "
                             f"{DRAFT}`.\n" + "".join(f"# {n}\n" for n in notes)
                             + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100), encoding="utf-8")
    (out / RESULTS).write_text(json.dumps({**results, "comparison": comparison, "policy_draft": notes},
                                          indent=1, default=str) + "\n", encoding="utf-8")
    other_engines = other.get("engines") if other is not None else None
    (out / REPORT).write_text(report.render(results, comparison, other_label, notes, other_engines), encoding="utf-8")
    return Written(out / RESULTS, out / REPORT, draft, notes, comparison)
