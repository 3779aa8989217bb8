"""Ranking: the hits search works with, their fusion and ordering, grouping by asset. Pure (no I/O).

Invariants: every ranking is total (ties broken by hit id), so pages are stable; a group's score is
its best hit's; ``grow`` only ever widens the candidate pool.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

RRF_K = 60


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


def grow(fetch: Callable[[int], tuple[list[Group], bool]], need: int, start: int, max_pool: int) -> list[Group]:
    """Fetch with a growing candidate pool until ``need`` groups, no more candidates, or ``max_pool``."""
    pool = min(start, max_pool)
    while True:
        groups, saturated = fetch(pool)
        if len(groups) >= need or not saturated or pool >= max_pool:
            return groups
        pool = min(pool * 4, max_pool)


def merge_lookalikes(embedding_lists: Iterable[Sequence[Hit]], pdq_lists: Iterable[Sequence[Hit]]) -> list[Hit]:
    """One hit per (asset, keyframe) from every query vector's and query hash's neighbours, ranked:
    near-duplicates first (smallest PDQ distance), then by best embedding similarity."""
    best: dict[tuple[str, Any], Hit] = {}
    for hits in embedding_lists:
        for h in hits:
            cur = best.setdefault((str(h.asset_id), h.keyframe_index), h)
            cur.similarity = max(cur.similarity or -1.0, h.similarity or -1.0)
    for hits in pdq_lists:
        for h in hits:
            cur = best.setdefault((str(h.asset_id), h.keyframe_index), h)
            if cur.pdq_distance is None or h.pdq_distance < cur.pdq_distance:  # type: ignore[operator]
                cur.pdq_distance = h.pdq_distance
    ranked = sorted(best.values(), key=lookalike_key)
    for h in ranked:
        h.score = lookalike_score(h)
    return ranked


def lookalike_key(h: Hit) -> tuple[Any, ...]:
    dup = h.pdq_distance is not None
    return (0 if dup else 1, h.pdq_distance if dup else 0, -(h.similarity if h.similarity is not None else -1.0),
            h.id)


def lookalike_score(h: Hit) -> float:
    """Near-duplicates score 1 + (256 - distance)/256 (> 1); others their cosine similarity (≤ 1)."""
    if h.pdq_distance is not None:
        return round(1.0 + (256 - h.pdq_distance) / 256, 6)
    return round(h.similarity or 0.0, 6)


def spread(items: list[Any], n: int) -> list[Any]:
    """At most ``n`` items evenly spaced over ``items``, first and last included."""
    if len(items) <= n:
        return items
    if n <= 1:
        return items[:n]
    step = (len(items) - 1) / (n - 1)
    return [items[round(i * step)] for i in range(n)]
