"""Search the library: by meaning (pgvector HNSW over text chunks), by words (tsvector + GIN),
both fused (reciprocal rank fusion, the default), and look-alike images (embedding + PDQ).

Everything here runs in the web process and only talks to PostgreSQL; model work (query
vectors, query images) is done by a worker through :mod:`apps.search.remote`.

Results are grouped by asset: each group carries the asset and its best moments (the chunks
that matched, with source, time range, highlighted snippet and the keyframe nearest in time).
``limit``/``offset`` count groups. Candidates are fetched in pools that grow until enough
distinct assets are found, and every vector query runs inside a transaction with
``hnsw.iterative_scan = relaxed_order`` so a selective filter still returns full pages.
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction

from apps.assets.models import MediaAsset
from apps.insights.models import ImageEmbedding, Keyframe, PerceptualHash, TextChunk
from apps.search import fulltext, remote
from apps.search.filters import ASSETS, Filters
from mediaintel.env import env_int

MODES = ("hybrid", "semantic", "text")
SIMILAR_MODES = ("embedding", "pdq", "both")
SOURCES = ("transcript", "ocr", "text", "tags")
RRF_K = 60
PDQ_THRESHOLD = 31
PDQ_MIN_QUALITY = 50
MAX_POOL = env_int("MEDIAINTEL_SEARCH_MAX_POOL", 4000)
EF_SEARCH = env_int("MEDIAINTEL_SEARCH_EF_SEARCH", 100)
MAX_SCAN_TUPLES = env_int("MEDIAINTEL_SEARCH_MAX_SCAN_TUPLES", 50000)
#: A filtered kNN whose filter leaves at most this many chunks (planner estimate) ranks them exactly.
EXACT_MAX_ROWS = env_int("MEDIAINTEL_SEARCH_EXACT_MAX_ROWS", 20000)
SNIPPET_CHARS = 240
# ts_headline marks: control characters never found in indexed text, swapped for <mark> after escaping
_START, _STOP = "\x01", "\x02"
_HEADLINE_OPTS = (f"StartSel={_START}, StopSel={_STOP}, MaxWords=30, MinWords=12, MaxFragments=2, "
                  'FragmentDelimiter=" … "')

CHUNKS = TextChunk._meta.db_table
IMAGE_EMB = ImageEmbedding._meta.db_table
HASHES = PerceptualHash._meta.db_table
KEYFRAMES = Keyframe._meta.db_table


# --------------------------------------------------------------------------- data


@dataclass
class Hit:
    """One matching piece of an asset: a text chunk, or a keyframe/image for look-alike search."""

    id: int
    asset_id: Any
    source: str
    start: float | None = None
    end: float | None = None
    char_start: int | None = None
    char_end: int | None = None
    language: str = ""
    keyframe_index: int | None = None
    similarity: float | None = None
    text_rank: float | None = None
    pdq_distance: int | None = None
    score: float = 0.0


@dataclass
class Group:
    asset_id: Any
    hits: list[Hit] = field(default_factory=list)

    @property
    def score(self) -> float:
        return self.hits[0].score if self.hits else 0.0


@dataclass(frozen=True)
class SearchParams:
    q: str
    mode: str = "hybrid"
    filters: Filters = field(default_factory=Filters)
    limit: int = 10
    offset: int = 0
    moments: int = 3


def vector_literal(v: Sequence[float]) -> str:
    return "[" + ",".join(f"{float(x):.7g}" for x in v) + "]"


def hnsw_session(ef_search: int = EF_SEARCH, max_scan_tuples: int = MAX_SCAN_TUPLES,
                 iterative: str = "relaxed_order") -> None:
    """Transaction-local pgvector settings (call inside ``transaction.atomic()``)."""
    with connection.cursor() as cur:
        cur.execute("SELECT set_config('hnsw.iterative_scan', %s, true), set_config('hnsw.ef_search', %s, true),"
                    " set_config('hnsw.max_scan_tuples', %s, true)",
                    [iterative, str(max(1, min(ef_search, 1000))), str(max_scan_tuples)])


def _where(filters: Filters, chunk: bool, extra: list[str], extra_params: list[Any],
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


# --------------------------------------------------------------------------- text chunks


def _embedded_chunks(filters: Filters, engine_version: str | None) -> tuple[str, str, list[Any]]:
    """(join, where, params) for chunks with an embedding (of ``engine_version``) that pass ``filters``."""
    extra = ["c.embedding IS NOT NULL"]
    extra_params: list[Any] = []
    if engine_version:
        extra.append("c.engine_version = %s")
        extra_params.append(engine_version)
    return _where(filters, True, extra, extra_params)


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


def _knn_rows(sql: str, query: str, params: list[Any], pool: int, ef_search: int | None = None,
              exact: bool = False) -> list[tuple[Any, ...]]:
    """Run a ``WITH hits AS MATERIALIZED (… ORDER BY distance LIMIT pool)`` kNN statement.

    ``query`` (a vector or bit-string literal) fills both distance placeholders around the filter
    ``params``; pgvector's session settings apply to this transaction only; ``exact`` keeps the
    planner off the graph (it is an index scan only).
    """
    with transaction.atomic():
        hnsw_session(ef_search or max(EF_SEARCH, pool))
        with connection.cursor() as cur:
            if exact:
                cur.execute("SET LOCAL enable_indexscan = off")
            cur.execute(sql, [query, *params, query, pool])
            return cur.fetchall()


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
    join, where, params = _where(filters, True, extra, [])
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


def rrf(*lists: Sequence[Hit], k: int = RRF_K) -> list[Hit]:
    """Reciprocal rank fusion: score = Σ 1 / (k + rank), ranks from 1; signals of both lists kept."""
    fused: dict[int, Hit] = {}
    for hits in lists:
        for rank, h in enumerate(hits, 1):
            cur = fused.get(h.id)
            if cur is None:
                cur = fused[h.id] = Hit(**{**h.__dict__, "score": 0.0})
            cur.score += 1.0 / (k + rank)
            cur.similarity = cur.similarity if cur.similarity is not None else h.similarity
            cur.text_rank = cur.text_rank if cur.text_rank is not None else h.text_rank
    out = sorted(fused.values(), key=lambda h: (-h.score, h.id))
    for h in out:
        h.score = round(h.score, 6)
    return out


def group_hits(hits: Sequence[Hit], moments: int) -> list[Group]:
    """Group ranked hits by asset (in order of each asset's best hit), keeping ``moments`` per asset."""
    groups: dict[Any, Group] = {}
    for h in hits:
        g = groups.setdefault(h.asset_id, Group(h.asset_id))
        if len(g.hits) < moments:
            g.hits.append(h)
    return list(groups.values())


def _grow(fetch: Callable[[int], tuple[list[Group], bool]], need: int, start: int) -> list[Group]:
    """Fetch with a growing candidate pool until ``need`` groups, no more candidates, or MAX_POOL."""
    pool = min(start, MAX_POOL)
    while True:
        groups, saturated = fetch(pool)
        if len(groups) >= need or not saturated or pool >= MAX_POOL:
            return groups
        pool = min(pool * 4, MAX_POOL)


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
            sem = semantic_chunks(qv.vector, qv.engine_version, params.filters, pool)
            timing["semantic"] = round((time.perf_counter() - t) * 1000, 2)
            lists.append(sem)
            saturated |= len(sem) >= pool
        if mode in ("text", "hybrid"):
            t = time.perf_counter()
            txt = text_chunks(q, params.filters, pool)
            timing["text"] = round((time.perf_counter() - t) * 1000, 2)
            lists.append(txt)
            saturated |= len(txt) >= pool
        ranked = rrf(*lists) if mode == "hybrid" else (lists[0] if lists else [])
        return group_hits(ranked, params.moments), saturated

    need = params.offset + params.limit + 1
    groups = _grow(fetch, need, max(50, need * params.moments * 2))
    page = groups[params.offset:params.offset + params.limit]
    t = time.perf_counter()
    out["results"] = _render_groups(page, q)
    timing["render"] = round((time.perf_counter() - t) * 1000, 2)
    out["has_more"] = len(groups) > params.offset + params.limit
    out["next_offset"] = params.offset + params.limit if out["has_more"] else None
    timing["total"] = round((time.perf_counter() - t0) * 1000, 2)
    out["timing_ms"] = timing
    return out


# --------------------------------------------------------------------------- rendering


def highlight(headline: str) -> tuple[str, str]:
    """(plain text, HTML with ``<mark>``) of a ts_headline result carrying the control-character marks."""
    plain = headline.replace(_START, "").replace(_STOP, "")
    marked = html.escape(headline).replace(_START, "<mark>").replace(_STOP, "</mark>")
    return plain, marked


def _shorten(text: str, n: int = SNIPPET_CHARS) -> str:
    text = " ".join(text.split())
    if len(text) <= n:
        return text
    cut = text.rfind(" ", 0, n)
    return text[: cut if cut > n // 2 else n] + " …"


def snippets(chunk_ids: Sequence[int], q: str) -> dict[int, tuple[str, str, bool]]:
    """chunk id → (snippet, snippet_html, whether words matched); matched words highlighted."""
    if not chunk_ids:
        return {}
    cfg = fulltext.ts_config_sql("c.language")
    with connection.cursor() as cur:
        cur.execute(f"SELECT c.id, c.text, ts_headline({cfg}, translate(c.text, %s, '  '), "  # noqa: S608
                    f"websearch_to_tsquery({cfg}, %s), %s) FROM {CHUNKS} c WHERE c.id = ANY(%s)",
                    [_START + _STOP, q, _HEADLINE_OPTS, list(chunk_ids)])
        rows = cur.fetchall()
    out: dict[int, tuple[str, str, bool]] = {}
    for cid, text, headline in rows:
        if _START in (headline or ""):
            plain, marked = highlight(headline)
            out[cid] = (plain, marked, True)
        else:
            short = _shorten(text or "")
            out[cid] = (short, html.escape(short), False)
    return out


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


def keyframe_url(asset_id: Any, index: int) -> str:
    return f"/api/v1/assets/{asset_id}/keyframes/{index}.jpg"


def console_url(asset_id: Any, seconds: float | None = None) -> str:
    base = f"/console/assets/{asset_id}/"
    return f"{base}?t={seconds:.2f}" if seconds is not None else base


def _thumb(asset: MediaAsset, kf: int | None) -> str | None:
    if kf is not None:
        return keyframe_url(asset.pk, kf)
    if asset.kind == "image":
        return f"/api/v1/assets/{asset.pk}/content"
    return None


def asset_summary(a: MediaAsset) -> dict[str, Any]:
    return {"id": str(a.pk), "kind": a.kind, "title": a.title, "filename": a.filename, "mime_type": a.mime_type,
            "duration": a.duration, "status": a.status, "moderation_state": a.moderation_state,
            "uploader": a.uploader.get_username() if a.uploader_id else None,
            "created_at": a.created_at.isoformat().replace("+00:00", "Z")}


def _assets(ids: Sequence[Any]) -> dict[str, MediaAsset]:
    return {str(a.pk): a for a in MediaAsset.objects.filter(pk__in=list(ids)).select_related("uploader")}


def _render_groups(groups: Sequence[Group], q: str) -> list[dict[str, Any]]:
    assets = _assets([g.asset_id for g in groups])
    hits = [h for g in groups for h in g.hits]
    snips = snippets([h.id for h in hits], q)
    video = {str(a.pk) for a in assets.values() if a.kind == "video"}
    points = [(h.asset_id, h.start, h.end) for h in hits if str(h.asset_id) in video]
    kfs = iter(nearest_keyframes(points))
    out = []
    for g in groups:
        asset = assets.get(str(g.asset_id))
        if asset is None:  # deleted meanwhile
            continue
        moments = []
        for h in g.hits:
            kf = next(kfs) if str(h.asset_id) in video else None
            snippet, snippet_html, matched = snips.get(h.id, ("", "", False))
            moments.append({
                "chunk_id": h.id, "source": h.source, "start": h.start, "end": h.end, "char_start": h.char_start,
                "char_end": h.char_end, "language": h.language, "score": h.score, "similarity": h.similarity,
                "text_rank": h.text_rank, "snippet": snippet, "snippet_html": snippet_html, "matched_words": matched,
                "keyframe_index": kf, "thumbnail_url": _thumb(asset, kf), "url": console_url(asset.pk, h.start)})
        out.append({"asset": asset_summary(asset), "score": g.score,
                    "thumbnail_url": moments[0]["thumbnail_url"] if moments else _thumb(asset, None),
                    "url": console_url(asset.pk), "moments": moments})
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


def _spread(items: list[Any], n: int) -> list[Any]:
    if len(items) <= n:
        return items
    step = (len(items) - 1) / (n - 1)
    return [items[round(i * step)] for i in range(n)]


def query_from_asset(asset: MediaAsset, per_asset: int = 8) -> ImageQuery:
    """Stored embeddings and PDQ hashes of an asset (up to ``per_asset`` keyframes spread over it)."""
    embs = list(ImageEmbedding.objects.filter(asset=asset).order_by("start", "keyframe_index", "id")
                .values_list("embedding", "engine_version"))
    hashes = list(PerceptualHash.objects.filter(asset=asset, algorithm="pdq").order_by("start", "keyframe_index")
                  .values_list("hash", "quality"))
    embs = _spread(embs, per_asset)
    return ImageQuery(embeddings=[[float(x) for x in (e.to_list() if hasattr(e, "to_list") else e)] for e, _ in embs],
                      embedding_version=embs[0][1] if embs else None,
                      hashes=[(str(h), int(q)) for h, q in _spread(hashes, per_asset)], exclude_asset=asset.pk,
                      description={"asset_id": str(asset.pk), "embeddings": len(embs), "hashes": len(hashes)})


def query_from_analysis(a: remote.ImageAnalysis) -> ImageQuery:
    return ImageQuery(embeddings=[a.embedding], embedding_version=a.embedding_version,
                      hashes=[(a.pdq_bits, a.pdq_quality)],
                      description={"pdq_hex": a.pdq_hex, "pdq_quality": a.pdq_quality,
                                   "tags": [{"label": t, "score": s} for t, s in a.tags], "analysis_ms": a.ms})


def embedding_neighbours(vector: Sequence[float], engine_version: str | None, filters: Filters, pool: int,
                         exclude: Any = None) -> list[Hit]:
    extra, extra_params = [], []
    if engine_version:
        extra.append("e.engine_version = %s")
        extra_params.append(engine_version)
    if exclude is not None:
        extra.append("e.asset_id <> %s")
        extra_params.append(exclude)
    join, where, params = _where(filters, False, extra, extra_params, alias="e")
    lit = vector_literal(vector)
    sql = (f"WITH hits AS MATERIALIZED (SELECT e.id, e.asset_id, e.keyframe_index, e.start, "  # noqa: S608
           f"e.embedding <=> %s::halfvec AS distance FROM {IMAGE_EMB} e {join} WHERE {where} "
           "ORDER BY e.embedding <=> %s::halfvec LIMIT %s) SELECT * FROM hits ORDER BY distance, id")
    rows = _knn_rows(sql, lit, params, pool)
    return [Hit(id=r[0], asset_id=r[1], source="image", keyframe_index=r[2], start=r[3],
                similarity=round(1.0 - float(r[4]), 6), score=round(1.0 - float(r[4]), 6)) for r in rows]


def pdq_neighbours(bits: str, filters: Filters, pool: int, threshold: int = PDQ_THRESHOLD,
                   min_quality: int = PDQ_MIN_QUALITY, exclude: Any = None) -> tuple[list[Hit], bool]:
    """Stored hashes within ``threshold`` bits (Hamming, HNSW ``<~>``); also whether the pool was full."""
    extra, extra_params = ["p.algorithm = 'pdq'", "p.quality >= %s"], [min_quality]
    if exclude is not None:
        extra.append("p.asset_id <> %s")
        extra_params.append(exclude)
    join, where, params = _where(filters, False, extra, extra_params, alias="p")
    sql = (f"WITH hits AS MATERIALIZED (SELECT p.id, p.asset_id, p.keyframe_index, p.start, "  # noqa: S608
           f"p.hash <~> %s::bit(256) AS distance FROM {HASHES} p {join} WHERE {where} "
           "ORDER BY p.hash <~> %s::bit(256) LIMIT %s) SELECT * FROM hits ORDER BY distance, id")
    rows = _knn_rows(sql, bits, params, pool)
    hits = [Hit(id=r[0], asset_id=r[1], source="image", keyframe_index=r[2], start=r[3], pdq_distance=int(r[4]),
                score=float(-r[4])) for r in rows if r[4] <= threshold]
    return hits, len(rows) >= pool and bool(rows) and rows[-1][4] <= threshold


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
        best: dict[tuple[Any, Any], Hit] = {}
        saturated = False
        if mode in ("embedding", "both"):
            for v in query.embeddings:
                hits = embedding_neighbours(v, query.embedding_version, filters, pool, query.exclude_asset)
                saturated |= len(hits) >= pool
                for h in hits:
                    key = (str(h.asset_id), h.keyframe_index)
                    cur = best.setdefault(key, h)
                    cur.similarity = max(cur.similarity or -1.0, h.similarity or -1.0)
        if mode in ("pdq", "both"):
            for bits, _q in usable_hashes:
                hits, full = pdq_neighbours(bits, filters, pool, threshold, min_quality, query.exclude_asset)
                saturated |= full
                for h in hits:
                    key = (str(h.asset_id), h.keyframe_index)
                    cur = best.setdefault(key, h)
                    if cur.pdq_distance is None or h.pdq_distance < cur.pdq_distance:  # type: ignore[operator]
                        cur.pdq_distance = h.pdq_distance
        ranked = sorted(best.values(), key=_similar_key)
        for h in ranked:
            h.score = _similar_score(h)
        return group_hits(ranked, moments), saturated

    need = offset + limit + 1
    groups = _grow(fetch, need, max(50, need * moments * 2)) if (query.embeddings or usable_hashes) else []
    page = groups[offset:offset + limit]
    assets = _assets([g.asset_id for g in page])
    video = {k for k, a in assets.items() if a.kind == "video"}
    points = [(h.asset_id, h.start, h.end) for g in page for h in g.hits if str(h.asset_id) in video
              and h.keyframe_index is None]
    kfs = iter(nearest_keyframes(points))
    results = []
    for g in page:
        asset = assets.get(str(g.asset_id))
        if asset is None:
            continue
        ms = []
        for h in g.hits:
            kf = h.keyframe_index
            if kf is None and str(h.asset_id) in video:
                kf = next(kfs)
            ms.append({"keyframe_index": h.keyframe_index, "time": h.start, "similarity": h.similarity,
                       "pdq_distance": h.pdq_distance,
                       "near_duplicate": h.pdq_distance is not None and h.pdq_distance <= threshold,
                       "score": h.score, "thumbnail_url": _thumb(asset, kf), "url": console_url(asset.pk, h.start)})
        dists = [m["pdq_distance"] for m in ms if m["pdq_distance"] is not None]
        sims = [m["similarity"] for m in ms if m["similarity"] is not None]
        results.append({"asset": asset_summary(asset), "score": g.score,
                        "near_duplicate": bool(dists), "pdq_distance": min(dists) if dists else None,
                        "similarity": max(sims) if sims else None,
                        "thumbnail_url": ms[0]["thumbnail_url"] if ms else _thumb(asset, None),
                        "url": console_url(asset.pk), "moments": ms})
    return {"mode": mode, "query": query.description, "threshold": threshold, "min_quality": min_quality,
            "limit": limit, "offset": offset, "has_more": len(groups) > offset + limit,
            "next_offset": offset + limit if len(groups) > offset + limit else None, "warnings": warnings,
            "results": results, "timing_ms": {"total": round((time.perf_counter() - t0) * 1000, 2)}}


def _similar_key(h: Hit) -> tuple[Any, ...]:
    dup = h.pdq_distance is not None
    return (0 if dup else 1, h.pdq_distance if dup else 0, -(h.similarity if h.similarity is not None else -1.0),
            h.id)


def _similar_score(h: Hit) -> float:
    """Near-duplicates score 1 + (256 - distance)/256 (> 1); others their cosine similarity (≤ 1)."""
    if h.pdq_distance is not None:
        return round(1.0 + (256 - h.pdq_distance) / 256, 6)
    return round(h.similarity or 0.0, 6)


def visible_assets(user: Any) -> Any:
    """The assets a user may search: all for moderators/admins, their own for everybody else."""
    from apps.core.roles import MODERATOR, has_role

    qs = MediaAsset.objects.all()
    return qs if has_role(user, MODERATOR) else qs.filter(uploader=user)

