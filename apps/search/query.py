"""Search's SQL: candidate statements (semantic kNN, full text, image embedding and PDQ neighbours)
and the lookups that results need (assets, headlines, keyframes, a stored asset's query material).

Invariants: every vector kNN runs in a transaction of its own with ``hnsw.iterative_scan =
relaxed_order`` (:mod:`apps.insights.knn`), so a selective filter still returns full pools; every
statement orders its rows totally (distance or rank, then id).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from django.db import connection

from apps.assets.models import MediaAsset
from apps.insights import knn
from apps.insights.models import ImageEmbedding, Keyframe, PerceptualHash, TextChunk
from apps.search import fulltext
from apps.search.filters import ASSETS, Filters
from apps.search.rank import Hit
from mediaintel.env import env_int

EF_SEARCH = env_int("MEDIAINTEL_SEARCH_EF_SEARCH", 100)
MAX_SCAN_TUPLES = env_int("MEDIAINTEL_SEARCH_MAX_SCAN_TUPLES", 50000)
#: A filtered kNN whose filter leaves at most this many chunks (planner estimate) ranks them exactly.
EXACT_MAX_ROWS = env_int("MEDIAINTEL_SEARCH_EXACT_MAX_ROWS", 20000)
# ts_headline marks: control characters never found in indexed text, swapped for <mark> after escaping
MARK_START, MARK_STOP = "\x01", "\x02"
_HEADLINE_OPTS = (f"StartSel={MARK_START}, StopSel={MARK_STOP}, MaxWords=30, MinWords=12, MaxFragments=2, "
                  'FragmentDelimiter=" … "')

CHUNKS = TextChunk._meta.db_table
IMAGE_EMB = ImageEmbedding._meta.db_table
KEYFRAMES = Keyframe._meta.db_table


def vector_literal(v: Sequence[float]) -> str:
    return "[" + ",".join(f"{float(x):.7g}" for x in v) + "]"


def where_clause(filters: Filters, chunk: bool, extra: list[str], extra_params: list[Any],
                 alias: str = "c") -> tuple[str, str, list[Any]]:
    """(join clause, where clause, params) for an insight alias ``alias`` joined to its asset as ``a``."""
    conds, params = list(extra), list(extra_params)
    if chunk:
        cc, cp = filters.chunk_sql(alias)
        conds += cc
        params += cp
    join = ""
    if filters.needs_asset:
        join = f"JOIN {ASSETS} a ON a.id = {alias}.asset_id"
        ac, ap = filters.asset_sql("a")
        conds += ac
        params += ap
    return join, " AND ".join(conds) or "TRUE", params


def _knn_rows(sql: str, query: str, params: list[Any], pool: int, ef_search: int | None = None,
              exact: bool = False) -> list[tuple[Any, ...]]:
    return knn.knn_rows(sql, query, params, pool, ef_search=ef_search or max(EF_SEARCH, pool),
                        max_scan_tuples=MAX_SCAN_TUPLES, exact=exact)


# --------------------------------------------------------------------------- text chunks


def _embedded_chunks(filters: Filters, engine_version: str | None) -> tuple[str, str, list[Any]]:
    """(join, where, params) for chunks with an embedding (of ``engine_version``) that pass ``filters``."""
    extra = ["c.embedding IS NOT NULL"]
    extra_params: list[Any] = []
    if engine_version:
        extra.append("c.engine_version = %s")
        extra_params.append(engine_version)
    return where_clause(filters, True, extra, extra_params)


def semantic_sql(filters: Filters, engine_version: str | None, pool: int) -> tuple[str, list[Any]]:
    """kNN over chunk embeddings; the query vector goes in as the two ``%(v)s`` occurrences (see caller)."""
    join, where, params = _embedded_chunks(filters, engine_version)
    sql = (f"WITH hits AS MATERIALIZED (SELECT c.id, c.asset_id, c.source, c.start, c.\"end\", c.char_start, "  # noqa: S608
           f"c.char_end, c.language, c.embedding <=> %s::vector AS distance FROM {CHUNKS} c {join} "
           f"WHERE {where} ORDER BY c.embedding <=> %s::vector LIMIT %s) "
           "SELECT * FROM hits ORDER BY distance, id")
    return sql, params


def estimated_rows(filters: Filters, engine_version: str | None) -> float:
    """The planner's estimate of the chunks with an embedding that pass ``filters`` (no rows are read)."""
    join, where, params = _embedded_chunks(filters, engine_version)
    with connection.cursor() as cur:
        cur.execute(f"EXPLAIN (FORMAT JSON) SELECT 1 FROM {CHUNKS} c {join} WHERE {where}", params)  # noqa: S608
        plan = cur.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    return float(plan[0]["Plan"]["Plan Rows"])


def exact_scan(filters: Filters, engine_version: str | None) -> bool:
    """Whether a filtered kNN should rank the matching chunks exactly instead of walking the graph.

    With a selective filter the HNSW walk must visit about 1/selectivity candidates per match
    (slow, and the iterative scan may stop before the true neighbours): at 1M chunks a 1 % filter
    took ~110 ms p95 at recall 0.94. Reading the few matching rows through the B-tree indexes and
    sorting them by distance is exact and faster. Unfiltered queries always use the graph.
    """
    if filters == Filters():
        return False
    return estimated_rows(filters, engine_version) <= EXACT_MAX_ROWS


def semantic_chunks(vector: Sequence[float], engine_version: str | None, filters: Filters, pool: int,
                    ef_search: int | None = None) -> list[Hit]:
    """The ``pool`` chunks nearest in meaning that pass ``filters``.

    An iterative HNSW scan, or an exact ranking of the matching rows when the filter is selective
    (:func:`exact_scan`).
    """
    sql, params = semantic_sql(filters, engine_version, pool)
    rows = _knn_rows(sql, vector_literal(vector), params, pool, ef_search, exact=exact_scan(filters, engine_version))
    return [Hit(id=r[0], asset_id=r[1], source=r[2], start=r[3], end=r[4], char_start=r[5], char_end=r[6],
                language=r[7], similarity=round(1.0 - float(r[8]), 6), score=round(1.0 - float(r[8]), 6))
            for r in rows]


def _configs_for(filters: Filters) -> tuple[str, ...]:
    if filters.languages:
        return tuple(sorted({fulltext.config_for(lang) for lang in filters.languages}))
    return fulltext.configs()


def text_sql(filters: Filters, configs: tuple[str, ...], pool: int) -> tuple[str, list[Any], int]:
    """Full-text match: GIN prefilter (query under every config), exact match under the row's own config.

    Returns (sql, filter params, number of query placeholders before them); the query string
    fills ``1 + len(configs) + 1`` placeholders, then the filter params, then ``pool``.
    """
    cfg = fulltext.ts_config_sql("c.language")
    extra = [f"c.tsv @@ {fulltext.prefilter_sql(configs)}", f"c.tsv @@ websearch_to_tsquery({cfg}, %s)"]
    join, where, params = where_clause(filters, True, extra, [])
    sql = (f"SELECT c.id, c.asset_id, c.source, c.start, c.\"end\", c.char_start, c.char_end, c.language, "  # noqa: S608
           f"ts_rank_cd(c.tsv, websearch_to_tsquery({cfg}, %s), 1) AS rank FROM {CHUNKS} c {join} "
           f"WHERE {where} ORDER BY rank DESC, c.id LIMIT %s")
    return sql, params, 2 + len(configs)


def text_chunks(q: str, filters: Filters, pool: int) -> list[Hit]:
    """The ``pool`` best full-text matches (ts_rank_cd) that pass ``filters``."""
    configs = _configs_for(filters)
    sql, params, n = text_sql(filters, configs, pool)
    with connection.cursor() as cur:
        cur.execute(sql, [q] * n + params + [pool])
        rows = cur.fetchall()
    return [Hit(id=r[0], asset_id=r[1], source=r[2], start=r[3], end=r[4], char_start=r[5], char_end=r[6],
                language=r[7], text_rank=round(float(r[8]), 6), score=round(float(r[8]), 6)) for r in rows]


def headlines(chunk_ids: Sequence[int], q: str) -> list[tuple[int, str, str | None]]:
    """(chunk id, text, ts_headline with :data:`MARK_START`/:data:`MARK_STOP` around matched words)."""
    if not chunk_ids:
        return []
    cfg = fulltext.ts_config_sql("c.language")
    with connection.cursor() as cur:
        cur.execute(f"SELECT c.id, c.text, ts_headline({cfg}, translate(c.text, %s, '  '), "  # noqa: S608
                    f"websearch_to_tsquery({cfg}, %s), %s) FROM {CHUNKS} c WHERE c.id = ANY(%s)",
                    [MARK_START + MARK_STOP, q, _HEADLINE_OPTS, list(chunk_ids)])
        return cur.fetchall()


# --------------------------------------------------------------------------- look-alike


def embedding_neighbours(vector: Sequence[float], engine_version: str | None, filters: Filters, pool: int,
                         exclude: Any = None) -> list[Hit]:
    extra, extra_params = [], []
    if engine_version:
        extra.append("e.engine_version = %s")
        extra_params.append(engine_version)
    if exclude is not None:
        extra.append("e.asset_id <> %s")
        extra_params.append(exclude)
    join, where, params = where_clause(filters, False, extra, extra_params, alias="e")
    lit = vector_literal(vector)
    sql = (f"WITH hits AS MATERIALIZED (SELECT e.id, e.asset_id, e.keyframe_index, e.start, "  # noqa: S608
           f"e.embedding <=> %s::halfvec AS distance FROM {IMAGE_EMB} e {join} WHERE {where} "
           "ORDER BY e.embedding <=> %s::halfvec LIMIT %s) SELECT * FROM hits ORDER BY distance, id")
    rows = _knn_rows(sql, lit, params, pool)
    return [Hit(id=r[0], asset_id=r[1], source="image", keyframe_index=r[2], start=r[3],
                similarity=round(1.0 - float(r[4]), 6), score=round(1.0 - float(r[4]), 6)) for r in rows]


def pdq_neighbours(bits: str, filters: Filters, pool: int, threshold: int, min_quality: int,
                   exclude: Any = None) -> tuple[list[Hit], bool]:
    """Stored hashes within ``threshold`` bits (Hamming, HNSW ``<~>``); also whether the pool was full."""
    extra, extra_params = ["p.quality >= %s"], [min_quality]
    if exclude is not None:
        extra.append("p.asset_id <> %s")
        extra_params.append(exclude)
    join, where, params = where_clause(filters, False, extra, extra_params, alias="p")
    found = knn.pdq_nearest(bits, pool, join=join, where=where, params=params, ef_search=max(EF_SEARCH, pool),
                            max_scan_tuples=MAX_SCAN_TUPLES)
    hits = [Hit(id=n.id, asset_id=n.asset_id, source="image", keyframe_index=n.keyframe_index, start=n.start,
                pdq_distance=n.distance, score=float(-n.distance)) for n in found if n.distance <= threshold]
    return hits, len(found) >= pool and bool(found) and found[-1].distance <= threshold


def stored_lookalike_material(asset: MediaAsset) -> tuple[list[tuple[Any, str]], list[tuple[str, int]]]:
    """An asset's image embeddings ``(vector, engine version)`` and PDQ hashes ``(bits, quality)``, in time order."""
    embs = list(ImageEmbedding.objects.filter(asset=asset).order_by("start", "keyframe_index", "id")
                .values_list("embedding", "engine_version"))
    hashes = list(PerceptualHash.objects.filter(asset=asset, algorithm="pdq").order_by("start", "keyframe_index")
                  .values_list("hash", "quality"))
    return embs, [(str(h), int(q)) for h, q in hashes]


# --------------------------------------------------------------------------- what results show


def assets(ids: Sequence[Any]) -> dict[str, MediaAsset]:
    """Asset id (as text) → asset with its uploader, for the ids that still exist."""
    return {str(a.pk): a for a in MediaAsset.objects.filter(pk__in=list(ids)).select_related("uploader")}


def nearest_keyframes(points: Sequence[tuple[Any, float | None, float | None]]) -> list[int | None]:
    """For each (asset id, start, end), the asset's keyframe for that moment: the first keyframe inside
    [start, end] nearest to start, else the one nearest to start (None when the asset has none)."""
    if not points:
        return []
    with connection.cursor() as cur:
        cur.execute(f"SELECT h.ord, k.idx FROM unnest(%s::uuid[], %s::float8[], %s::float8[]) "  # noqa: S608
                    f"WITH ORDINALITY AS h(aid, s, e, ord) CROSS JOIN LATERAL (SELECT kf.index AS idx "
                    f"FROM {KEYFRAMES} kf WHERE kf.asset_id = h.aid ORDER BY "
                    "(kf.time BETWEEN coalesce(h.s, 0) AND coalesce(h.e, h.s, 0)) DESC, "
                    "abs(kf.time - coalesce(h.s, 0)), kf.index LIMIT 1) k",
                    [[str(p[0]) for p in points], [p[1] for p in points], [p[2] for p in points]])
        found = {int(o): int(i) for o, i in cur.fetchall()}
    return [found.get(n) for n in range(1, len(points) + 1)]


def visible_assets(user: Any) -> Any:
    """The assets a user may search: all for moderators/admins, their own for everybody else."""
    from apps.core.roles import MODERATOR, has_role

    qs = MediaAsset.objects.all()
    return qs if has_role(user, MODERATOR) else qs.filter(uploader=user)
