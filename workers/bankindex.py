"""The hash-bank index of a worker process: every bank entry's PDQ hash in a :class:`PdqIndex`.

Installed by each pool child (``workers/tasks/__init__.py``) as the process's
:class:`apps.moderation.bankmatch.EntryIndex`; loaded on the first lookup, not at start.

A lookup (:meth:`BankIndex.entry_rows`) is one round trip to the database when nothing new is
within reach: the index is searched as it stands (at the radius the last lookup read), then one
statement reads the candidates' rows (only enabled entries of enabled banks), the rows added since
the last lookup, and the enabled banks' largest threshold. A second statement is needed only when
that threshold grew past the radius searched, or a bulk import landed (the rest comes by COPY); then
the caught-up index is searched again at the new radius and the candidates not yet read are read.

How it stays correct (the invariant of ``bankmatch``: the index proposes, the database decides):

* Removals never need the index: every row ``bankmatch.match`` answers from is read from the
  database during the lookup (enabled entries of enabled banks; it measures each bank's threshold).
  The index holds every entry ever seen (disabled ones too, so re-enabling one needs no reload);
  deleted ones cost only a wasted candidate until the process restarts.
* Additions: with each lookup the index reads the rows with ``id`` above the highest id it has
  (one primary-key range scan, nothing when nothing is new). Ids are handed out in order but
  committed in any order, so the ids skipped below that highest id are kept as *gaps* and re-read
  each time until they appear; a gap older than :data:`GAP_TTL_S` (an id of a transaction that rolled
  back, or a conflicting row ``bulk_create(ignore_conflicts=True)`` skipped) is dropped. At the first
  load only holes among the newest :data:`RECENT_IDS` ids count as gaps (older holes are deleted
  rows). Missed until the process restarts: entries of a transaction that stays open longer than
  the gap TTL, or that commits after the first load with ids older than the newest 10,000.
* The same catch-up query returns the enabled banks' largest threshold: the search radius. New
  rows are read with their bank (``bankmatch.ENTRY_COLUMNS``), so a new enabled entry within reach
  is answered from that same read.

The first load reads the table with a binary ``COPY`` (five int8 per row: the id and the four
64-bit words of the hash); a catch-up with a plain query (by ``COPY`` past 10,000 new rows).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
from django.db import connection

from apps.moderation.bankmatch import ENABLED, ENTRIES, ENTRY_COLUMNS
from workers.engines.pdqindex import PdqIndex, as_array, distances

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


CATCH_UP_LIMIT = 10_000
_CANDIDATES = f"SELECT 0, {ENTRY_COLUMNS}, true FROM {ENTRIES} WHERE {ENABLED} AND e.id = ANY(%s::bigint[]) "  # noqa: S608
_NEW = f"UNION ALL (SELECT 1, {ENTRY_COLUMNS}, {ENABLED} FROM {ENTRIES} WHERE e.id > %s ORDER BY e.id LIMIT %s) "  # noqa: S608
_GAPS = (f"UNION ALL SELECT 2, {ENTRY_COLUMNS}, {ENABLED} FROM {ENTRIES} "  # noqa: S608
         "JOIN unnest(%s::bigint[], %s::bigint[]) g(lo, hi) ON e.id BETWEEN g.lo AND g.hi ")
_MAX = ("UNION ALL SELECT 3, NULL, NULL, NULL, NULL, NULL, NULL, max(threshold), NULL "
        "FROM moderation_hashbank WHERE enabled")
_LOOKUP = _CANDIDATES + _NEW + _MAX
_LOOKUP_GAPS = _CANDIDATES + _NEW + _GAPS + _MAX  # each branch costs planning time: gaps are rare
_CONFIRM = f"SELECT {ENTRY_COLUMNS} FROM {ENTRIES} WHERE {ENABLED} AND e.id = ANY(%s::bigint[])"  # noqa: S608


def _bits_to_array(bit_strings: Sequence[str]) -> np.ndarray:
    """``(n, 32) uint8`` hashes from 256-char bit strings (vectorised)."""
    if not bit_strings:
        return np.zeros((0, 32), np.uint8)
    chars = np.frombuffer("".join(bit_strings).encode("ascii"), np.uint8).reshape(-1, 256) - ord("0")
    return np.packbits(chars, axis=1)


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
        self._radius: int | None = None  # the enabled banks' largest threshold at the last lookup
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

    def _search(self, qs: np.ndarray, radius: int | None) -> set[int]:
        assert self._index is not None
        found: set[int] = set()
        if radius is not None:
            for q in qs:
                found.update(self._index.search(q, radius)[0].tolist())
        return found

    def entry_rows(self, queries: Sequence[str]) -> list[tuple]:
        """Rows (``bankmatch.ENTRY_COLUMNS``) of the enabled entries of enabled banks within the enabled
        banks' largest threshold of any query, read during this call; caught up with the table on the way
        (one statement when nothing new is within reach, see the module's docstring)."""
        if self._index is None:
            self.refresh()
        qs = as_array(queries)
        radius = self._radius
        asked = self._search(qs, radius)
        now = time.monotonic()
        self._gaps = [g for g in self._gaps if now - g[2] < GAP_TTL_S][-MAX_GAPS:]
        with connection.cursor() as cur:
            if self._gaps:
                cur.execute(_LOOKUP_GAPS, [sorted(asked), self._max_id, CATCH_UP_LIMIT,
                                           [g[0] for g in self._gaps], [g[1] for g in self._gaps]])
            else:
                cur.execute(_LOOKUP, [sorted(asked), self._max_id, CATCH_UP_LIMIT])
            result = cur.fetchall()
        threshold = next(None if r[7] is None else int(r[7]) for r in result if r[0] == 3)
        rows = [r[1:8] for r in result if r[0] == 0]
        new = sorted((r for r in result if r[0] in (1, 2)), key=lambda r: r[1])
        new_ids = np.array([r[1] for r in new], np.int64)
        new_hashes = _bits_to_array([r[6] for r in new])
        bulk = sum(1 for r in new if r[0] == 1) >= CATCH_UP_LIMIT
        if threshold is not None and new:  # new enabled entries within reach are answered from this read
            near = np.zeros(len(new), bool)
            for q in qs:
                near |= distances(q, new_hashes) <= threshold
            rows += [r[1:8] for r, ok in zip(new, near, strict=True) if ok and r[8]]
        if bulk:  # a bulk import landed: the rest by COPY, searched below
            more_ids, more_hashes = _read("e.id > %s", [int(new_ids.max())])
            new_ids, new_hashes = np.concatenate([new_ids, more_ids]), np.concatenate([new_hashes, more_hashes])
        if len(new_ids):
            order = np.argsort(new_ids, kind="stable")
            new_ids, new_hashes = new_ids[order], new_hashes[order]
            self._index.add(new_ids, new_hashes)
            self._note(new_ids, self._max_id)
        self._radius = threshold
        if threshold is None:
            return []
        if bulk or radius is None or threshold > radius:  # candidates the first read could not know
            rest = self._search(qs, threshold) - asked - {r[1] for r in new}
            if rest:
                with connection.cursor() as cur:
                    cur.execute(_CONFIRM, [sorted(rest)])
                    rows += cur.fetchall()
        return rows


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
