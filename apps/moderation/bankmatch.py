"""Bank matching: which enabled hash-bank entries lie within their bank's threshold of PDQ hashes.

:func:`match` is the one place the product asks this (the moderate stage's signals, ``bank check``).

Invariant: the answer is exactly the enabled entries of enabled banks whose Hamming distance to a
query hash is ≤ that bank's threshold, as the caller's database transaction sees them; the index
only proposes candidates.

Where the lookup runs: a process may install an :class:`EntryIndex` (the worker pool children do:
``workers/bankindex.py``, an in-memory multi-index-hashing index over every entry, kept in sync
with ``moderation_hashbankentry`` on each lookup). Without one (the web tier has no numpy) an
exact SQL scan (``bit_count(hash # q) <= threshold``) answers, which is linear in the bank size.
Either way every row the answer is made of is read from the database during the call
(:data:`ENTRY_COLUMNS` under :data:`ENABLED`), so an entry disabled or deleted, or a bank disabled,
deleted or given a lower threshold, never matches whatever the index still holds. The index reads
its candidates' rows in the same statement as its catch-up with the table: one round trip per call
when nothing new is within reach.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from django.db import connection

#: An entry row as :func:`match` reads it (``e``: the entry, ``b``: its bank).
ENTRY_COLUMNS = "e.id, e.bank_id, e.quality, e.label, e.source_asset_id, e.hash, b.threshold"
#: The entries that can match: enabled ones of enabled banks.
ENTRIES = "moderation_hashbankentry e JOIN moderation_hashbank b ON b.id = e.bank_id"
ENABLED = "e.enabled AND b.enabled"
_ENTRY_COLUMNS, _ENABLED = ENTRY_COLUMNS, f"FROM {ENTRIES} WHERE {ENABLED}"


class EntryIndex(Protocol):
    """Rows (:data:`ENTRY_COLUMNS`) of enabled entries of enabled banks, read from the database in the
    caller's transaction during the call: at least every entry within its bank's threshold of a query
    (bit strings). Farther entries may be among them (the caller measures each distance)."""

    def entry_rows(self, queries: Sequence[str]) -> list[tuple[Any, ...]]: ...


_index: EntryIndex | None = None


def install_index(index: EntryIndex | None) -> EntryIndex | None:
    """Use ``index`` for this process's lookups (``None``: the SQL scan); the previous one is returned."""
    global _index
    old, _index = _index, index
    return old


def installed_index() -> EntryIndex | None:
    return _index


def _max_threshold() -> int | None:
    with connection.cursor() as cur:
        cur.execute("SELECT max(threshold) FROM moderation_hashbank WHERE enabled")
        row = cur.fetchone()
    return None if row is None or row[0] is None else int(row[0])


def match(queries: Sequence[str]) -> list[list[dict[str, Any]]]:
    """For each query (a 256-char bit string): its matching entries, nearest first.

    Each match is ``{"id", "bank_id", "quality", "label", "source_asset_id", "distance"}``.
    """
    out: list[list[dict[str, Any]]] = [[] for _ in queries]
    if not queries:
        return out
    ints = [int(q, 2) for q in queries]
    if _index is not None:
        rows = _index.entry_rows(list(queries))
    else:
        if _max_threshold() is None:
            return out
        rows = []
        with connection.cursor() as cur:
            for q in queries:
                cur.execute(f"SELECT {_ENTRY_COLUMNS} {_ENABLED} "
                            "AND bit_count(e.hash # %s::bit(256)) <= b.threshold", [q])
                rows += cur.fetchall()
    seen: set[tuple[int, int]] = set()
    for entry_id, bank_id, quality, label, source_asset_id, bits, threshold in rows:
        h = int(bits, 2)
        for i, q in enumerate(ints):
            d = (h ^ q).bit_count()
            if d <= threshold and (i, entry_id) not in seen:
                seen.add((i, entry_id))
                out[i].append({"id": entry_id, "bank_id": bank_id, "quality": quality, "label": label,
                               "source_asset_id": source_asset_id, "distance": d})
    for found in out:
        found.sort(key=lambda f: (f["distance"], f["id"]))
    return out
