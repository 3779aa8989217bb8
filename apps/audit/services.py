"""Recording and verifying audit events.

Events are chained: ``hash = sha256(prev_hash + canonical JSON of the event)``. Writers take a
transaction-scoped advisory lock so the chain stays linear under concurrency; the lock is
held only for the insert, at the end of the caller's transaction.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.core.logging import request_id
from apps.core.timestamps import rfc3339

GENESIS = "0" * 64
_LOCK_KEY = 0x4D454449  # "MEDI"


@dataclass(frozen=True)
class Actor:
    """Who did it: a user or a named system component."""

    type: str
    id: str
    label: str

    @classmethod
    def system(cls, component: str) -> Actor:
        return cls(AuditEvent.ActorType.SYSTEM, "", component)

    @classmethod
    def user(cls, user: Any) -> Actor:
        if user is None or not getattr(user, "is_authenticated", False):
            return cls.system("anonymous")
        return cls(AuditEvent.ActorType.USER, str(user.pk), user.get_username())


def _digest(prev_hash: str, fields: dict[str, Any]) -> str:
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256((prev_hash + canonical).encode()).hexdigest()


def _fields(e: AuditEvent) -> dict[str, Any]:
    return {
        "created_at": e.created_at.isoformat(), "actor_type": e.actor_type, "actor_id": e.actor_id,
        "actor_label": e.actor_label, "verb": e.verb, "target_type": e.target_type, "target_id": e.target_id,
        "payload": e.payload, "request_id": e.request_id,
    }


def _plain(value: Any) -> str:
    """A payload value JSON cannot hold, as text: datetimes in the API's one format, others ``str()``."""
    return rfc3339(value) if isinstance(value, datetime) and value.tzinfo is not None else str(value)


def record(verb: str, *, target_type: str, target_id: Any, actor: Actor,
           payload: dict[str, Any] | None = None) -> AuditEvent:
    """Append one event to the chain (inside the caller's transaction when there is one)."""
    with transaction.atomic():
        with connection.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
        last = AuditEvent.objects.order_by("-id").values_list("hash", flat=True).first()
        prev = last or GENESIS
        event = AuditEvent(
            created_at=timezone.now(), actor_type=actor.type, actor_id=actor.id,
            actor_label=actor.label[:150], verb=verb, target_type=target_type, target_id=str(target_id),
            payload=json.loads(json.dumps(payload or {}, default=_plain)), request_id=request_id.get(),
            prev_hash=prev,
        )
        event.hash = _digest(prev, _fields(event))
        event.save(force_insert=True)
        return event


@dataclass
class VerifyResult:
    ok: bool
    checked: int
    problems: list[str]


def verify(batch: int = 5000) -> VerifyResult:
    """Walk the chain: every hash must recompute and link to its predecessor.

    A deleted event breaks the link of the one after it; an altered one fails its own hash.
    (Ids may skip: a rolled-back transaction consumes a sequence value.)
    """
    problems: list[str] = []
    prev, n = GENESIS, 0
    for e in AuditEvent.objects.order_by("id").iterator(chunk_size=batch):
        n += 1
        if e.prev_hash != prev:
            problems.append(f"#{e.id}: prev_hash does not match the previous event (missing or altered event)")
        if _digest(e.prev_hash, _fields(e)) != e.hash:
            problems.append(f"#{e.id}: content does not match its hash (tampered)")
        prev = e.hash
    return VerifyResult(ok=not problems, checked=n, problems=problems)
