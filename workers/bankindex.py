"""The hash-bank index of a worker process: every bank entry's PDQ hash in a :class:`PdqIndex`.

Installed by each pool child (``workers/tasks/__init__.py``) as the process's
:class:`apps.moderation.bankmatch.EntryIndex`; loaded on the first lookup, not at start.

How it stays correct (the invariant of ``bankmatch``: the index proposes, the database decides):

* Removals never need the index: ``bankmatch.match`` re-reads every candidate and keeps only
  enabled entries of enabled banks within the bank's current threshold. The index holds every entry
  ever seen (disabled ones too, so re-enabling one needs no reload); deleted ones cost only a
  wasted candidate until the process restarts.
* Additions: before each lookup the index reads the rows with ``id`` above the highest id it has
  (one primary-key range scan, nothing when nothing is new). Ids are handed out in order but
  committed in any order, so the ids skipped below that highest id are kept as *gaps* and re-read
  each time until they appear; a gap older than :data:`GAP_TTL_S` (an id of a transaction that rolled
  back, or a conflicting row ``bulk_create(ignore_conflicts=True)`` skipped) is dropped. At the first
  load only holes among the newest :data:`RECENT_IDS` ids count as gaps (older holes are deleted
  rows). Missed until the process restarts: entries of a transaction that stays open longer than
  the gap TTL, or that commits after the first load with ids older than the newest 10,000.
* The same catch-up query returns the enabled banks' largest threshold: the search radius.

The first load reads the table with a binary ``COPY`` (five int8 per row: the id and the four
64-bit words of the hash); a catch-up with a plain query (by ``COPY`` past 10,000 new rows).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
from django.db import connection

from workers.engines.pdqindex import PdqIndex, as_array

GAP_TTL_S = 3600.0
MAX_GAPS = 10_000
RECENT_IDS = 10_000  # at the first load, holes among the newest ids may be uncommitted rows, older ones deletions
_WORDS = ", ".join(f"substring(e.hash from {1 + 64 * i} for 64)::bit(64)::bigint" for i in range(4))
_ROW = np.dtype([("n", ">i2"), ("l0", ">i4"), ("id", ">i8"), ("l1", ">i4"), ("w0", ">u8"), ("l2", ">i4"),
                 ("w1", ">u8"), ("l3", ">i4"), ("w2", ">u8"), ("l4", ">i4"), ("w3", ">u8")])
_HEADER = 19  # PGCOPY signature (11) + flags (4) + header extension length (4)


def _read(where: str, params: Sequence[object], join: str = "") -> tuple[np.ndarray, np.ndarray]:
    """(ids, (n, 32) uint8 hashes) of the entries matching ``where``, ids ascending."""
    sql = (f"COPY (SELECT e.id, {_WORDS} FROM moderation_hashbankentry e {join} WHERE {where} "  # noqa: S608
           "ORDER BY e.id) "
           "TO STDOUT (FORMAT BINARY)")
    parts: list[np.ndarray] = []
    buf = bytearray()
    skipped_header = False
    with connection.cursor() as cur, cur.cursor.copy(sql, params) as copy:
        for block in copy:
            buf += block
            if not skipped_header and len(buf) >= _HEADER:
                del buf[:_HEADER]
                skipped_header = True
            whole = (len(buf) // _ROW.itemsize) * _ROW.itemsize
            if skipped_header and whole >= 1 << 22:
                parts.append(np.frombuffer(bytes(buf[:whole]), dtype=_ROW))
                del buf[:whole]
    if skipped_header:
        whole = (len(buf) // _ROW.itemsize) * _ROW.itemsize  # what remains is the 2-byte trailer
        if whole:
            parts.append(np.frombuffer(bytes(buf[:whole]), dtype=_ROW))
    rows = np.concatenate(parts) if parts else np.zeros(0, _ROW)
    ids = rows["id"].astype(np.int64)
    words = np.empty((len(rows), 4), ">u8")
    for i in range(4):
        words[:, i] = rows[f"w{i}"]
    return ids, words.view(np.uint8).reshape(-1, 32)


_THRESHOLD = "(SELECT max(threshold) FROM moderation_hashbank WHERE enabled)"


_CATCH_UP = (f"SELECT {_THRESHOLD}, n.* FROM (SELECT 1) one LEFT JOIN LATERAL ("  # noqa: S608
             f"SELECT e.id, {_WORDS} FROM moderation_hashbankentry e WHERE e.id > %s ORDER BY e.id "
             "LIMIT %s) n ON true")


def _catch_up(after: int, limit: int) -> tuple[int | None, np.ndarray, np.ndarray]:
    """The enabled banks' largest threshold, and up to ``limit`` entries with ``id > after`` (one query)."""
    with connection.cursor() as cur:
        cur.execute(_CATCH_UP, [after, limit])
        rows = cur.fetchall()
    threshold = None if rows[0][0] is None else int(rows[0][0])
    rows = [r[1:] for r in rows if r[1] is not None]
    ids, hashes = _to_arrays(rows)
    return threshold, ids, hashes


def _select(where: str, params: Sequence[object], join: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Like :func:`_read` through a plain query (cheaper than COPY for the few rows of a catch-up)."""
    with connection.cursor() as cur:
        cur.execute(f"SELECT e.id, {_WORDS} FROM moderation_hashbankentry e {join} WHERE {where} "  # noqa: S608
                    "ORDER BY e.id", list(params))
        return _to_arrays(cur.fetchall())


def _to_arrays(rows: list[tuple[int, ...]]) -> tuple[np.ndarray, np.ndarray]:
    if not rows:
        return np.zeros(0, np.int64), np.zeros((0, 32), np.uint8)
    arr = np.array(rows, dtype=np.int64)
    return arr[:, 0].copy(), np.ascontiguousarray(arr[:, 1:].astype(">i8")).view(np.uint8).reshape(-1, 32)


class BankIndex:
    """Every ``moderation_hashbankentry`` hash, caught up with the database before each lookup."""

    def __init__(self) -> None:
        self._index: PdqIndex | None = None
        self._max_id = 0
        self._gaps: list[tuple[int, int, float]] = []  # (lo, hi, first seen): ids not yet seen
        self.load_seconds = 0.0

    def __len__(self) -> int:
        return len(self._index) if self._index is not None else 0

    @property
    def nbytes(self) -> int:
        return self._index.nbytes if self._index is not None else 0

    def refresh(self) -> int | None:
        """Load or catch up with the table; the enabled banks' largest threshold (None: no enabled bank)."""
        if self._index is None:
            t0 = time.perf_counter()
            ids, hashes = _read("true", [])
            self._index = PdqIndex(ids, hashes)
            recent = ids[ids > (int(ids[-1]) - RECENT_IDS)] if len(ids) else ids
            self._note(recent, int(recent[0]) - 1 if len(recent) else 0)
            self.load_seconds = time.perf_counter() - t0
        now = time.monotonic()
        self._gaps = [g for g in self._gaps if now - g[2] < GAP_TTL_S][-MAX_GAPS:]
        threshold, ids, hashes = _catch_up(self._max_id, 10_000)
        if len(ids) >= 10_000:  # a bulk import landed: the rest by COPY
            more_ids, more_hashes = _read("e.id > %s", [int(ids[-1])])
            ids, hashes = np.concatenate([ids, more_ids]), np.concatenate([hashes, more_hashes])
        if self._gaps:  # one index range scan per gap
            gap_ids, gap_hashes = _select(
                "true", [[g[0] for g in self._gaps], [g[1] for g in self._gaps]],
                join="JOIN unnest(%s::bigint[], %s::bigint[]) g(lo, hi) ON e.id BETWEEN g.lo AND g.hi")
            ids, hashes = np.concatenate([gap_ids, ids]), np.concatenate([gap_hashes, hashes])
        if len(ids):
            self._index.add(ids, hashes)
            self._note(ids, self._max_id)
        return threshold

    def _note(self, ids: np.ndarray, previous_max: int) -> None:
        """Record the ids now held: fill gaps they close, add gaps they skip above ``previous_max``."""
        now = time.monotonic()
        gaps: list[tuple[int, int, float]] = []
        for lo, hi, seen in self._gaps:
            present = ids[(ids >= lo) & (ids <= hi)].tolist()
            gaps += [(a, b, seen) for a, b in _holes(lo, hi, sorted(present))]
        new = ids[ids > previous_max]
        if len(new):
            gaps += [(a, b, now) for a, b in _holes(previous_max + 1, int(new[-1]), new.tolist())]
            self._max_id = int(new[-1])
        self._gaps = gaps[-MAX_GAPS:]

    def candidates(self, queries: Sequence[str]) -> tuple[int | None, set[int]]:
        """The enabled banks' largest threshold, and the entry ids within it of any query (caught up first)."""
        radius = self.refresh()
        assert self._index is not None
        found: set[int] = set()
        if radius is not None:
            for q in as_array(queries):
                found.update(self._index.search(q, radius)[0].tolist())
        return radius, found


def _holes(lo: int, hi: int, present: list[int]) -> list[tuple[int, int]]:
    """The ranges of [lo, hi] not in ``present`` (sorted, each within [lo, hi])."""
    out, nxt = [], lo
    for i in present:
        if i > nxt:
            out.append((nxt, i - 1))
        nxt = max(nxt, i + 1)
    if nxt <= hi:
        out.append((nxt, hi))
    return out
