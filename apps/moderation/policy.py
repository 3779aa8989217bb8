"""The policy engine: signals + a policy version → approve, review or block, with reasons.

Pure functions (no database), so the same evaluation runs in the moderate stage, in tests and
in a "what would this policy do" preview.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mediacommon.text import contains_nul

APPROVE, REVIEW, BLOCK = "approve", "review", "block"


@dataclass(frozen=True)
class SignalIn:
    category: str
    score: float
    source: str


@dataclass
class Verdict:
    action: str
    scores: dict[str, float] = field(default_factory=dict)  # weighted score per category
    blocking: list[str] = field(default_factory=list)
    reviewing: list[str] = field(default_factory=list)
    severity: float = 0.0

    @property
    def reason_codes(self) -> list[str]:
        return self.blocking or self.reviewing

    def ground(self, policy_label: str) -> str:
        if self.action == APPROVE:
            return f"No category reached its review threshold under {policy_label}."
        parts = ", ".join(f"{c} {self.scores[c]:.2f}" for c in self.reason_codes)
        verb = "block" if self.action == BLOCK else "review"
        return f"{parts} reached the {verb} threshold under {policy_label}."


#: The JSON Schema of a rules document, as the API documents it. :func:`validate_rules` checks
#: the same structure by hand (with messages that name the category), plus the two rules a JSON
#: Schema cannot state: a category must exist in the taxonomy, and ``block`` is not below
#: ``review``. Keys the schema does not name are kept as sent.
THRESHOLD_SCHEMA: dict[str, Any] = {"type": "number", "minimum": 0, "maximum": 1.01}
RULES_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Per category (an existing code, GET /api/v1/categories/): the weighted score at which an asset "
                   "goes to review and at which it is blocked (1.01: never; block not below review); optional "
                   "per-source weights (default 1). `bank_on_reject`: a hash bank that a moderator's rejection adds "
                   "the asset to, or null.",
    "properties": {
        "categories": {
            "type": "object", "minProperties": 1,
            "additionalProperties": {
                "type": "object",
                "properties": {
                    "review": THRESHOLD_SCHEMA,
                    "block": THRESHOLD_SCHEMA,
                    "weights": {"type": "object", "additionalProperties": {"type": "number", "minimum": 0}},
                },
                "required": ["review", "block"],
            },
        },
        "bank_on_reject": {"type": ["string", "null"], "maxLength": 100},
    },
    "required": ["categories"],
}


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def validate_rules(rules: Mapping[str, Any], known_categories: Iterable[str]) -> tuple[list[str], list[str]]:
    """``(problems, unknown)``: what is malformed in a rules document (:data:`RULES_SCHEMA`, block
    not below review), and the category codes it names that the taxonomy lacks. Both empty: valid.
    Kept apart because they differ in kind: a malformed document is the request's fault (400); an
    unknown category conflicts with the taxonomy as it is now (409: add it and send again)."""
    problems: list[str] = []
    if contains_nul(rules):
        return ["rules may not contain NUL (U+0000) characters"], []
    cats = rules.get("categories")
    if not isinstance(cats, Mapping) or not cats:
        return ["rules.categories must map category codes to thresholds"], []
    bank = rules.get("bank_on_reject")
    if bank is not None and not (isinstance(bank, str) and len(bank) <= 100):
        problems.append("bank_on_reject must be a hash bank's name or null")
    known = set(known_categories)
    unknown = [code for code in cats if code not in known]
    for code, rule in cats.items():
        if not isinstance(rule, Mapping):
            problems.append(f"{code}: rule must be a mapping")
            continue
        review, block = rule.get("review"), rule.get("block")
        for name, v in (("review", review), ("block", block)):
            if not _number(v) or not 0 <= v <= 1.01:
                problems.append(f"{code}: {name} must be a number in 0..1 (1.01 = never)")
        if _number(review) and _number(block) and block < review:
            problems.append(f"{code}: block threshold is below the review threshold")
        weights = rule.get("weights", {})
        if not isinstance(weights, Mapping) or not all(_number(w) and w >= 0 for w in weights.values()):
            problems.append(f"{code}: weights must map sources to non-negative numbers")
    return problems, unknown


def evaluate(signals: Iterable[SignalIn], rules: Mapping[str, Any], severities: Mapping[str, int]) -> Verdict:
    """Per category the strongest weighted signal; any block → block, else any review → review."""
    cats: Mapping[str, Any] = rules.get("categories", {})
    scores: dict[str, float] = {}
    for s in signals:
        rule = cats.get(s.category)
        if rule is None:
            continue  # the policy does not cover this category
        weighted = min(1.0, s.score * float(rule.get("weights", {}).get(s.source, 1.0)))
        scores[s.category] = max(scores.get(s.category, 0.0), weighted)
    v = Verdict(action=APPROVE, scores=scores)
    for code, score in sorted(scores.items(), key=lambda kv: -kv[1]):
        rule = cats[code]
        if score >= rule.get("block", 1.01):
            v.blocking.append(code)
        elif score >= rule.get("review", 1.01):
            v.reviewing.append(code)
    if v.blocking:
        v.action = BLOCK
    elif v.reviewing:
        v.action = REVIEW
    v.severity = max((severities.get(c, 3) * scores[c] for c in v.reason_codes), default=0.0)
    return v
