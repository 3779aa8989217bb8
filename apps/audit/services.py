"""Recording and verifying audit events.

Events are chained: ``hash = sha256(prev_hash + canonical JSON of the event)``, in commit order.
``record()`` only inserts the event, in the caller's transaction (so an action and its record
commit or roll back together) and takes no lock: a long transaction that has audited holds up
no other writer. Once the caller's transaction has committed, ``seal()`` links every committed,
unsealed event to the chain in one short transaction of its own under an advisory lock, the only
place the lock is held, so the chain stays linear (``seq`` 1, 2, … with each ``prev_hash`` the
previous ``hash``). An event whose writer died between commit and sealing is sealed by the next
``seal()`` (any audited write, or ``verify()``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import Max
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
    """Insert one event in the caller's transaction (its own when there is none); it is sealed into
    the chain when that transaction commits (the returned object then carries its chain fields)."""
    event = AuditEvent(
        created_at=timezone.now(), actor_type=actor.type, actor_id=actor.id,
        actor_label=actor.label[:150], verb=verb, target_type=target_type, target_id=str(target_id),
        payload=json.loads(json.dumps(payload or {}, default=_plain)), request_id=request_id.get(),
    )
    with transaction.atomic():
        event.save(force_insert=True)
        _seal_on_commit(event)
    return event


class _SealOnCommit:
    """One on-commit callback per transaction scope, sealing after commit and filling in its events."""

    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    def __call__(self) -> None:
        sealed = seal()
        for e in self.events:
            if e.pk in sealed:
                e.seq, e.prev_hash, e.hash = sealed[e.pk]
            else:  # sealed by another process's seal() that ran first
                e.refresh_from_db(fields=["seq", "prev_hash", "hash"])


def _seal_on_commit(event: AuditEvent) -> None:
    # Callbacks registered under the same savepoints are discarded together on a rollback, so an
    # event may share the callback of an earlier one only when both stand under the same savepoints.
    sids = set(connection.savepoint_ids)
    for registered_sids, func, _robust in connection.run_on_commit:
        if isinstance(func, _SealOnCommit) and registered_sids == sids:
            func.events.append(event)
            return
    callback = _SealOnCommit()
    callback.events.append(event)
    transaction.on_commit(callback, robust=True)


def seal(batch: int = 1000) -> dict[int, tuple[int, str, str]]:
    """Link every committed, unsealed event to the chain, in id order; returns ``{id: (seq, prev, hash)}``.

    Runs in its own short transaction under the advisory lock (so sealers take turns and the chain
    stays linear); call it outside any transaction, or it would hold the lock until that one ends.
    """
    done: dict[int, tuple[int, str, str]] = {}
    while True:
        with transaction.atomic():
            with connection.cursor() as cur:
                cur.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
            pending = list(AuditEvent.objects.filter(hash__isnull=True).order_by("id")[:batch])
            if not pending:
                return done
            seq = AuditEvent.objects.aggregate(m=Max("seq"))["m"] or 0
            prev = (AuditEvent.objects.filter(seq=seq).values_list("hash", flat=True).first() or GENESIS
                    if seq else GENESIS)
            for e in pending:
                seq += 1
                e.seq, e.prev_hash, e.hash = seq, prev, _digest(prev, _fields(e))
                e.save(update_fields=["seq", "prev_hash", "hash"])
                done[e.pk] = (e.seq, e.prev_hash, e.hash)
                prev = e.hash
            if len(pending) < batch:
                return done


@dataclass
class VerifyResult:
    ok: bool
    checked: int
    problems: list[str]


def verify(batch: int = 5000) -> VerifyResult:
    """Seal what is pending, then walk the chain in ``seq`` order: every hash must recompute and link
    to its predecessor.

    A deleted event breaks the link of the one after it; an altered one fails its own hash.
    (Ids may skip: a rolled-back transaction consumes a sequence value; ``seq`` never does.)
    Events committed after the sealing pass are left to the next run.
    """
    seal()
    problems: list[str] = []
    prev, n = GENESIS, 0
    for e in AuditEvent.objects.filter(seq__isnull=False).order_by("seq").iterator(chunk_size=batch):
        n += 1
        if e.prev_hash != prev:
            problems.append(f"#{e.id}: prev_hash does not match the previous event (missing or altered event)")
        if _digest(e.prev_hash, _fields(e)) != e.hash:
            problems.append(f"#{e.id}: content does not match its hash (tampered)")
        prev = e.hash
    return VerifyResult(ok=not problems, checked=n, problems=problems)
