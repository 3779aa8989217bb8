"""Policies as YAML: export a version, import a document as the next version.

The document::

    policy: default          # which policy (created on first import)
    version: 3               # informational: the exported version (ignored on import)
    note: stricter on threats
    rules:
      bank_on_reject: null
      categories:
        harassment/threat: {review: 0.4, block: 1.01}
        ...

A bare rules mapping (``categories:`` at the top) is accepted too. Importing
(:func:`apps.moderation.actions.import_policy`, audited) validates the rules and stores them as the
next version; rules equal to the active version's create nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from apps.moderation.models import PolicyVersion
from apps.moderation.services import ModerationError

HEADER = "# MediaIntel moderation policy. Import with `manage.py policy import FILE` or POST /api/v1/policies/import\n"
MAX_BYTES = 1024 * 1024


def to_document(version: PolicyVersion) -> dict[str, Any]:
    return {"policy": version.policy.name, "version": version.number, "note": version.note,
            "created_at": version.created_at.isoformat() if version.created_at else None, "rules": version.rules}


def export_yaml(version: PolicyVersion) -> str:
    """The version as a YAML document (round-trips through :func:`parse_yaml`)."""
    return HEADER + yaml.safe_dump(to_document(version), sort_keys=False, allow_unicode=True, width=100)


@dataclass
class ParsedPolicy:
    name: str
    rules: dict[str, Any]
    note: str


def parse_yaml(text: str | bytes, *, name: str | None = None) -> ParsedPolicy:
    """Parse (not store) a policy document; ModerationError ``invalid_policy`` (400) when malformed."""
    if isinstance(text, bytes):
        if len(text) > MAX_BYTES:
            raise ModerationError("the policy document is larger than 1 MiB", "invalid_policy", 400)
        text = text.decode("utf-8", "replace")
    if len(text) > MAX_BYTES:
        raise ModerationError("the policy document is larger than 1 MiB", "invalid_policy", 400)
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ModerationError(f"the policy is not valid YAML: {e}", "invalid_policy", 400) from None
    if not isinstance(doc, dict):
        raise ModerationError("the policy document must be a mapping", "invalid_policy", 400)
    if "rules" in doc:
        rules, doc_name, note = doc["rules"], doc.get("policy"), doc.get("note")
    elif "categories" in doc:
        rules, doc_name, note = doc, None, None
    else:
        raise ModerationError("the policy document needs `rules:` (or `categories:` at the top)",
                              "invalid_policy", 400)
    if not isinstance(rules, dict):
        raise ModerationError("rules must be a mapping", "invalid_policy", 400)
    chosen = name or doc_name or "default"
    if not isinstance(chosen, str) or not chosen.strip() or len(chosen) > 100:
        raise ModerationError("policy must be a name of at most 100 characters", "invalid_policy", 400)
    return ParsedPolicy(name=chosen.strip(), rules=rules, note=str(note or "")[:300])
