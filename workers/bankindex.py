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
  back, or a conflicting row ``bulk_create(ignore_conflicts=True)`` skipped) is dropped. A
  transaction that inserts entries and stays open longer than that would be missed until restart.

Rows are read with a binary ``COPY`` (five int8 per row: the id and the four 64-bit words of the
hash), about 10M rows in 20 s.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
from django.db import connection

from workers.engines.pdqindex import PdqIndex, as_array

GAP_TTL_S = 3600.0
MAX_GAPS = 10_000
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

    def refresh(self) -> int:
        """Load or catch up with the table; how many entries were new."""
        if self._index is None:
            t0 = time.perf_counter()
            ids, hashes = _read("true", [])
            self._index = PdqIndex(ids, hashes)
            self._note(ids, 0)
            self.load_seconds = time.perf_counter() - t0
            return len(ids)
        now = time.monotonic()
        self._gaps = [g for g in self._gaps if now - g[2] < GAP_TTL_S][-MAX_GAPS:]
        ids, hashes = _read("e.id > %s", [self._max_id])
        if self._gaps:  # one index range scan per gap
            gap_ids, gap_hashes = _read(
                "true", [[g[0] for g in self._gaps], [g[1] for g in self._gaps]],
                join="JOIN unnest(%s::bigint[], %s::bigint[]) g(lo, hi) ON e.id BETWEEN g.lo AND g.hi")
            ids, hashes = np.concatenate([gap_ids, ids]), np.concatenate([gap_hashes, hashes])
        if len(ids):
            self._index.add(ids, hashes)
            self._note(ids, self._max_id)
        return len(ids)

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

    def candidates(self, queries: Sequence[str], radius: int) -> set[int]:
        """Entry ids within ``radius`` of any query (after catching up with the table)."""
        self.refresh()
        assert self._index is not None
        found: set[int] = set()
        for q in as_array(queries):
            found.update(self._index.search(q, radius)[0].tolist())
        return found


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
