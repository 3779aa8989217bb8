"""Statements of reasons for a time range, read from the decisions (layout: :mod:`apps.moderation.dsa`).

The range is whole UTC days, both ends included; only restricting (``reject``) decisions have a
statement. Read-only: nothing is written, so an export can run at any time and as often as needed.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from apps.insights.models import Language
from apps.moderation import dsa
from apps.moderation.models import Category, Decision, Outcome, Signal

MAX_DAYS = 366
FORMATS = ("json", "csv")


class ExportError(ValueError):
    """Bad export arguments; the message names the problem."""


def check_range(start: date, end: date) -> None:
    if end < start:
        raise ExportError(f"the range ends (to {end}) before it starts (from {start})")
    if (end - start).days + 1 > MAX_DAYS:
        raise ExportError(f"the range is at most {MAX_DAYS} days (asked: {(end - start).days + 1})")


def check_territories(codes: Iterable[str]) -> list[str]:
    out = sorted({c.strip().upper() for c in codes if c.strip()})
    if not out:
        raise ExportError("territorial scope: name at least one EU/EEA country code")
    if bad := [c for c in out if c not in dsa.EEA_COUNTRIES]:
        raise ExportError(f"territorial scope: not EU/EEA country codes: {', '.join(bad)}")
    return out


def decisions_between(start: date, end: date) -> Any:
    lo = datetime.combine(start, time.min, tzinfo=UTC)
    qs = Decision.objects.filter(outcome=Outcome.REJECT, created_at__gte=lo)
    if end < date.max:  # the last representable day has no next day: no upper bound then
        qs = qs.filter(created_at__lt=datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC))
    return qs.select_related("asset", "policy_version__policy").order_by("created_at", "id")


def _language(asset_id: Any) -> str:
    row = Language.objects.filter(asset_id=asset_id).order_by("-score").first()
    return row.language[:2] if row else ""


def _evidence(d: Decision) -> list[str]:
    out = []
    for code in d.reason_codes:
        s = Signal.objects.filter(asset_id=d.asset_id, category_id=code).order_by("-score").first()
        if s is None:
            continue
        where = f", {s.start:.1f}–{s.end:.1f} s" if s.start is not None and s.end is not None else ""
        out.append(f"{code} {s.score:.2f} ({s.source}{where})")
    return out


def facts_of(d: Decision, categories: dict[str, Category]) -> dsa.DecisionFacts:
    return dsa.DecisionFacts(
        decision_id=str(d.pk), outcome=d.outcome, reason_codes=list(d.reason_codes),
        category_names={c: categories[c].name for c in d.reason_codes if c in categories},
        category_severity={c: categories[c].severity for c in d.reason_codes if c in categories},
        ground=d.ground, policy_label=d.policy_version.label if d.policy_version else "",
        automated_detection=d.automated_detection, automated_decision=d.automated_decision,
        decided_at=d.created_at, asset_kind=d.asset.kind, asset_created_at=d.asset.created_at,
        language=_language(d.asset_id), evidence=_evidence(d))


def statements_between(start: date, end: date, *,
                       territorial_scope: Iterable[str] = dsa.EEA_COUNTRIES) -> list[dict[str, Any]]:
    """The statements of every restricting decision taken from ``start`` to ``end`` (UTC days, inclusive)."""
    check_range(start, end)
    scope = check_territories(territorial_scope)
    categories = {c.code: c for c in Category.objects.all()}
    return [dsa.statement_for(facts_of(d, categories), territorial_scope=scope)
            for d in decisions_between(start, end)]


def render(statements: list[dict[str, Any]], fmt: str) -> str:
    if fmt not in FORMATS:
        raise ExportError(f"format is one of {', '.join(FORMATS)}, not {fmt!r}")
    return dsa.to_json(statements) if fmt == "json" else dsa.to_csv(statements)
