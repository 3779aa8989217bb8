"""Nearest-neighbour statements over the insight indexes (pgvector HNSW), shared by search and moderation.

``pdq_nearest`` is the one PDQ Hamming kNN: the stored ``bit(256)`` hashes nearest to a query hash
through the HNSW index (``<~>``), optionally narrowed by a join and a condition. Every kNN runs in a
transaction of its own whose pgvector settings (``hnsw_session``) apply to it alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction

from apps.insights.models import PerceptualHash

HASHES = PerceptualHash._meta.db_table


def hnsw_session(ef_search: int, max_scan_tuples: int = 20000, iterative: str = "relaxed_order") -> None:
    """Transaction-local pgvector settings (call inside ``transaction.atomic()``); ef_search is kept in 1..1000."""
    with connection.cursor() as cur:
        cur.execute("SELECT set_config('hnsw.iterative_scan', %s, true), set_config('hnsw.ef_search', %s, true),"
                    " set_config('hnsw.max_scan_tuples', %s, true)",
                    [iterative, str(max(1, min(ef_search, 1000))), str(max_scan_tuples)])


def knn_rows(sql: str, query: str, params: list[Any], pool: int, *, ef_search: int, max_scan_tuples: int = 20000,
             exact: bool = False) -> list[tuple[Any, ...]]:
    """Run a ``WITH hits AS MATERIALIZED (… ORDER BY distance LIMIT pool)`` kNN statement.

    ``query`` (a vector or bit-string literal) fills both distance placeholders around the filter
    ``params``; ``pool`` fills the LIMIT. ``exact`` keeps the planner off the graph (it is an index
    scan only), for a filter selective enough that ranking its rows exactly is cheaper.
    """
    with transaction.atomic():
        hnsw_session(ef_search, max_scan_tuples)
        with connection.cursor() as cur:
            if exact:
                cur.execute("SET LOCAL enable_indexscan = off")
            cur.execute(sql, [query, *params, query, pool])
            return cur.fetchall()


@dataclass(frozen=True)
class PdqNeighbour:
    id: int
    asset_id: Any
    keyframe_index: int | None
    start: float | None
    quality: int
    distance: int


def pdq_nearest(bits: str, limit: int, *, join: str = "", where: str = "TRUE", params: list[Any] | None = None,
                ef_search: int | None = None, max_scan_tuples: int = 20000) -> list[PdqNeighbour]:
    """The ``limit`` stored PDQ hashes nearest to ``bits`` (a 256-character bit string), nearest first
    (ties by id), among rows of alias ``p`` that pass ``join``/``where`` (``params`` fill ``where``).

    Approximate (HNSW with an iterative scan); ``ef_search`` defaults to ``limit`` (capped at 1000).
    """
    sql = ("WITH hits AS MATERIALIZED (SELECT p.id, p.asset_id, p.keyframe_index, p.start, p.quality, "  # noqa: S608
           f"p.hash <~> %s::bit(256) AS distance FROM {HASHES} p {join} WHERE p.algorithm = 'pdq' AND ({where}) "
           "ORDER BY p.hash <~> %s::bit(256) LIMIT %s) SELECT * FROM hits ORDER BY distance, id")
    rows = knn_rows(sql, bits, list(params or []), limit, ef_search=max(40, ef_search or limit),
                    max_scan_tuples=max_scan_tuples)
    return [PdqNeighbour(id=r[0], asset_id=r[1], keyframe_index=r[2], start=r[3], quality=int(r[4]),
                         distance=int(r[5])) for r in rows]
