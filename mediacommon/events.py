"""The domain event catalogue: every event type, its version and the JSON Schema of its envelope.

Web code writes events (``apps.events.services.publish``), workers relay them to the bus, and
other systems read them; all three agree on this one table. It is published as JSON Schema
files and an AsyncAPI document under ``docs/events/`` (``python -m mediacommon.events
docs/events`` writes them; a test checks the published files equal what this module says).

Invariants:

- An event's ``type`` names what happened (``<noun>.<past participle>``); its ``version``
  changes whenever the shape of ``data`` changes incompatibly (a new optional field is not
  incompatible). Consumers select on ``(type, version)``.
- The envelope is the same for every type: ``id`` (UUID, unique: consumers de-duplicate on it,
  delivery is at least once), ``type``, ``version``, ``seq`` (the outbox sequence: increasing for the
  events of one asset in the order they were written), ``asset`` (the asset it concerns, or null),
  ``occurred_at`` and ``data``.
- Standard library only (web and workers import it).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

SCHEMA_DRAFT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_BASE = "https://mediaintel.example/events/"

_UUID = {"type": "string", "format": "uuid"}
_NULLABLE_UUID = {"type": ["string", "null"], "format": "uuid"}
_STR = {"type": "string"}
_INT = {"type": "integer", "minimum": 0}


def _obj(required: dict[str, Any], optional: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": {**required, **(optional or {})}, "required": sorted(required),
            "additionalProperties": False}


_STAGE = {"asset": _UUID, "stage": _STR, "run": _INT, "job": _NULLABLE_UUID, "engine_version": _STR,
          "attempts": _INT}
_DECISION = {"decision": _UUID, "asset": _UUID, "outcome": {"enum": ["approve", "reject", "escalate"]},
             "reason_codes": {"type": "array", "items": _STR}, "automated_detection": {"type": "boolean"},
             "automated_decision": {"type": "boolean"}, "ground": _STR, "policy": {"type": ["string", "null"]}}
_PROCESSED = {"asset": _UUID, "job": _UUID, "moderation_state": _STR}

#: type → (version, description, JSON Schema of ``data``)
EVENTS: dict[str, tuple[int, str, dict[str, Any]]] = {
    "asset.ingested": (1, "An upload was accepted and stored; its pipeline starts after this commits.",
                       _obj({"asset": _UUID, "kind": {"enum": ["video", "audio", "image", "text"]}, "mime": _STR,
                             "size": _INT, "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                             "source": _STR})),
    "asset.deleted": (1, "An asset and its derived data were deleted.", _obj({"asset": _UUID})),
    "stage.completed": (1, "A pipeline stage finished and its results are stored.", _obj(_STAGE)),
    "stage.skipped": (1, "A stage does not apply to the asset (no audio track, no weights configured).",
                      _obj({**_STAGE, "reason": _STR})),
    "stage.failed": (1, "A stage attempt failed with a transient error; it is retried after retry_in seconds.",
                     _obj({**_STAGE, "error": _STR, "retry_in": {"type": "number", "minimum": 0}})),
    "stage.dead": (1, "A stage failed permanently or ran out of attempts; a dead letter keeps it for replay.",
                   _obj({**_STAGE, "error": _STR, "permanent": {"type": "boolean"}})),
    "asset.ready": (1, "Every stage of the asset's job is done or skipped.",
                    _obj({**_PROCESSED, "status": {"const": "done"}})),
    "asset.failed": (1, "The asset's job ended with a dead stage.",
                     _obj({**_PROCESSED, "status": {"const": "failed"}})),
    "decision.made": (1, "A moderation decision (automated or human) was recorded for an asset.", _obj(_DECISION)),
    "review.created": (1, "The policy sent an asset to human review.",
                       _obj({"review_item": _UUID, "asset": _UUID, "categories": {"type": "array", "items": _STR},
                             "severity": {"type": "number"}})),
    "review.decided": (1, "A moderator decided (or escalated) a review item.",
                       _obj({"review_item": _UUID, "asset": _UUID, "decision": _UUID,
                             "outcome": {"enum": ["approve", "reject", "escalate"]}})),
    "appeal.opened": (1, "An uploader appealed a decision.",
                      _obj({"appeal": _UUID, "decision": _UUID, "asset": _UUID})),
    "appeal.decided": (1, "A moderator decided an appeal (upheld: the decision stands).",
                       _obj({"appeal": _UUID, "decision": _UUID, "asset": _UUID, "upheld": {"type": "boolean"}})),
    "bank.matched": (1, "Moderation found the asset's perceptual hashes in a hash bank.",
                     _obj({"asset": _UUID, "bank": _STR, "bank_kind": _STR, "matches": _INT,
                           "min_distance": _INT})),
}


class UnknownEvent(ValueError):
    pass


def version_of(event_type: str) -> int:
    try:
        return EVENTS[event_type][0]
    except KeyError:
        raise UnknownEvent(f"unknown event type {event_type!r}; add it to mediacommon/events.py") from None


def schema_id(event_type: str) -> str:
    return f"{SCHEMA_BASE}{event_type}.v{version_of(event_type)}.json"


def schema(event_type: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the whole envelope of ``event_type``."""
    version, description, data = EVENTS[event_type]
    return {
        "$schema": SCHEMA_DRAFT, "$id": schema_id(event_type), "title": f"{event_type} v{version}",
        "description": description, "type": "object", "additionalProperties": False,
        "required": ["id", "type", "version", "seq", "asset", "occurred_at", "data"],
        "properties": {"id": _UUID, "type": {"const": event_type}, "version": {"const": version},
                       "seq": {"type": "integer", "minimum": 1}, "asset": _NULLABLE_UUID,
                       "occurred_at": {"type": "string", "format": "date-time"}, "data": data},
    }


def schema_file(event_type: str) -> str:
    return f"{event_type}.v{version_of(event_type)}.json"


def asyncapi(channel: str = "mediaintel.events") -> dict[str, Any]:
    """An AsyncAPI 2.6 document: one channel (stream / subject prefix / topic), one message per type."""
    messages = {f"{t}.v{v}": {"name": t, "title": f"{t} v{v}", "summary": d, "contentType": "application/json",
                              "payload": {"$ref": f"schemas/{schema_file(t)}"}}
                for t, (v, d, _) in EVENTS.items()}
    return {
        "asyncapi": "2.6.0",
        "info": {"title": "MediaIntel domain events", "version": "1",
                 "description": "Relayed at least once from the transactional outbox, in order per asset; "
                                "de-duplicate on the envelope id. See docs/events.md."},
        "defaultContentType": "application/json",
        "channels": {channel: {"description": "Redis stream key, NATS subject prefix (<prefix>.<type>) or "
                                              "Kafka topic (keyed by asset)",
                               "subscribe": {"message": {"oneOf": [{"$ref": f"#/components/messages/{k}"}
                                                                   for k in messages]}}}},
        "components": {"messages": messages},
    }


def write(directory: str | Path) -> list[Path]:
    """Write ``schemas/<type>.v<version>.json`` and ``asyncapi.json`` under ``directory``."""
    root = Path(directory)
    (root / "schemas").mkdir(parents=True, exist_ok=True)
    written = []
    for t in EVENTS:
        p = root / "schemas" / schema_file(t)
        p.write_text(json.dumps(schema(t), indent=2) + "\n")
        written.append(p)
    p = root / "asyncapi.json"
    p.write_text(json.dumps(asyncapi(), indent=2) + "\n")
    return [*written, p]


if __name__ == "__main__":  # python -m mediacommon.events docs/events
    for path in write(sys.argv[1] if len(sys.argv) > 1 else "docs/events"):
        print(path)
