"""Search the library: by meaning (pgvector HNSW over text chunks), by words (tsvector + GIN),
both fused (reciprocal rank fusion, the default), and look-alike images (embedding + PDQ).

This module runs a search end to end; the work is split by concern: :mod:`apps.search.query`
(the SQL), :mod:`apps.search.rank` (fusion, ordering, grouping: pure) and
:mod:`apps.search.present` (snippets, links, the JSON of results).

Everything here runs in the web process and only talks to PostgreSQL; model work (query
vectors, query images) is done by a worker through :mod:`apps.search.remote`.

Results are grouped by asset: each group carries the asset and its best moments (the chunks
that matched, with source, time range, highlighted snippet and the keyframe nearest in time).
``limit``/``offset`` count groups. Candidates are fetched in pools that grow until enough
distinct assets are found.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from apps.assets.models import MediaAsset
from apps.search import present, remote
from apps.search import query as sql
from apps.search.filters import Filters
from apps.search.rank import Group, group_hits, grow, merge_lookalikes, rrf, spread
from mediaintel.env import env_int

MODES = ("hybrid", "semantic", "text")
SIMILAR_MODES = ("embedding", "pdq", "both")
SOURCES = ("transcript", "ocr", "text", "tags")
PDQ_THRESHOLD = 31
PDQ_MIN_QUALITY = 50
MAX_POOL = env_int("MEDIAINTEL_SEARCH_MAX_POOL", 4000)


@dataclass(frozen=True)
class SearchParams:
    q: str
    mode: str = "hybrid"
    filters: Filters = field(default_factory=Filters)
    limit: int = 10
    offset: int = 0
    moments: int = 3


def search(params: SearchParams) -> dict[str, Any]:
    """Run a query; see the module docstring. The body is the API's response."""
    t0 = time.perf_counter()
    q = remote.normalise(params.q)
    timing: dict[str, float] = {}
    out: dict[str, Any] = {"query": q, "mode": params.mode, "effective_mode": params.mode, "degraded": False,
                           "degraded_reason": None, "limit": params.limit, "offset": params.offset}
    qv = None
    if params.mode in ("semantic", "hybrid"):
        try:
            qv = remote.embed_query(q)
            timing["embed"] = qv.ms
            out["query_vector_cache"] = qv.cached or "miss"
        except remote.RemoteUnavailable as e:
            out.update(degraded=True, degraded_reason=f"semantic search unavailable ({e}); full-text results only",
                       effective_mode="text")
    mode = out["effective_mode"]

    def fetch(pool: int) -> tuple[list[Group], bool]:
        lists, saturated = [], False
        if mode in ("semantic", "hybrid") and qv is not None:
            t = time.perf_counter()
            sem = sql.semantic_chunks(qv.vector, qv.engine_version, params.filters, pool)
            timing["semantic"] = round((time.perf_counter() - t) * 1000, 2)
            lists.append(sem)
            saturated |= len(sem) >= pool
        if mode in ("text", "hybrid"):
            t = time.perf_counter()
            txt = sql.text_chunks(q, params.filters, pool)
            timing["text"] = round((time.perf_counter() - t) * 1000, 2)
            lists.append(txt)
            saturated |= len(txt) >= pool
        ranked = rrf(*lists) if mode == "hybrid" else (lists[0] if lists else [])
        return group_hits(ranked, params.moments), saturated

    need = params.offset + params.limit + 1
    groups = grow(fetch, need, max(50, need * params.moments * 2), MAX_POOL)
    page = groups[params.offset:params.offset + params.limit]
    t = time.perf_counter()
    out["results"] = present.render_groups(page, q)
    timing["render"] = round((time.perf_counter() - t) * 1000, 2)
    out["has_more"] = len(groups) > params.offset + params.limit
    out["next_offset"] = params.offset + params.limit if out["has_more"] else None
    timing["total"] = round((time.perf_counter() - t0) * 1000, 2)
    out["timing_ms"] = timing
    return out


# --------------------------------------------------------------------------- look-alike


@dataclass(frozen=True)
class ImageQuery:
    """Either stored rows of an asset or an uploaded image's analysis, as query vectors and hashes."""

    embeddings: list[list[float]]
    embedding_version: str | None
    hashes: list[tuple[str, int]]  # (bits, quality)
    exclude_asset: Any = None
    description: dict[str, Any] = field(default_factory=dict)


def query_from_asset(asset: MediaAsset, per_asset: int = 8) -> ImageQuery:
    """Stored embeddings and PDQ hashes of an asset (up to ``per_asset`` keyframes spread over it)."""
    embs, hashes = sql.stored_lookalike_material(asset)
    embs = spread(embs, per_asset)
    return ImageQuery(embeddings=[[float(x) for x in (e.to_list() if hasattr(e, "to_list") else e)] for e, _ in embs],
                      embedding_version=embs[0][1] if embs else None,
                      hashes=spread(hashes, per_asset), exclude_asset=asset.pk,
                      description={"asset_id": str(asset.pk), "embeddings": len(embs), "hashes": len(hashes)})


def query_from_analysis(a: remote.ImageAnalysis) -> ImageQuery:
    return ImageQuery(embeddings=[a.embedding], embedding_version=a.embedding_version,
                      hashes=[(a.pdq_bits, a.pdq_quality)],
                      description={"pdq_hex": a.pdq_hex, "pdq_quality": a.pdq_quality,
                                   "tags": [{"label": t, "score": s} for t, s in a.tags], "analysis_ms": a.ms})


def similar(query: ImageQuery, *, mode: str = "both", filters: Filters | None = None, limit: int = 10,
            offset: int = 0, threshold: int = PDQ_THRESHOLD, min_quality: int = PDQ_MIN_QUALITY,
            moments: int = 3) -> dict[str, Any]:
    """Assets that look like the query: near-duplicates (PDQ ≤ threshold) first, then by embedding similarity."""
    t0 = time.perf_counter()
    filters = filters or Filters()
    usable_hashes = [(b, q) for b, q in query.hashes if q >= min_quality]
    warnings = []
    if mode in ("pdq", "both") and query.hashes and not usable_hashes:
        warnings.append(f"the query's PDQ quality is below {min_quality}: too weak to match near-duplicates")
    if mode in ("embedding", "both") and not query.embeddings:
        warnings.append("no image embedding for the query")

    def fetch(pool: int) -> tuple[list[Group], bool]:
        saturated = False
        embedding_lists, pdq_lists = [], []
        if mode in ("embedding", "both"):
            for v in query.embeddings:
                hits = sql.embedding_neighbours(v, query.embedding_version, filters, pool, query.exclude_asset)
                saturated |= len(hits) >= pool
                embedding_lists.append(hits)
        if mode in ("pdq", "both"):
            for bits, _q in usable_hashes:
                hits, full = sql.pdq_neighbours(bits, filters, pool, threshold, min_quality, query.exclude_asset)
                saturated |= full
                pdq_lists.append(hits)
        return group_hits(merge_lookalikes(embedding_lists, pdq_lists), moments), saturated

    need = offset + limit + 1
    groups = grow(fetch, need, max(50, need * moments * 2), MAX_POOL) if (query.embeddings or usable_hashes) else []
    page = groups[offset:offset + limit]
    results = present.render_lookalikes(page, threshold)
    return {"mode": mode, "query": query.description, "threshold": threshold, "min_quality": min_quality,
            "limit": limit, "offset": offset, "has_more": len(groups) > offset + limit,
            "next_offset": offset + limit if len(groups) > offset + limit else None, "warnings": warnings,
            "results": results, "timing_ms": {"total": round((time.perf_counter() - t0) * 1000, 2)}}
