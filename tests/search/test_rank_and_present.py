"""Search ranking and presentation as pure functions: fusion, look-alike order, pool growth, snippets."""

from __future__ import annotations

import pytest

from apps.search import present, rank
from apps.search.query import MARK_START, MARK_STOP
from apps.search.rank import Group, Hit


def test_rrf_fuses_ranks_with_k_60():
    a = [Hit(id=i, asset_id="a", source="transcript", similarity=1 - i / 10) for i in (1, 2, 3)]
    b = [Hit(id=i, asset_id="b", source="ocr", text_rank=1 / i) for i in (3, 4)]
    fused = rank.rrf(a, b)
    scores = {h.id: h.score for h in fused}
    assert scores[3] == pytest.approx(1 / 63 + 1 / 61, abs=1e-6)  # in both lists: first
    assert [h.id for h in fused] == [3, 1, 2, 4]
    assert fused[0].similarity is not None and fused[0].text_rank is not None


def test_rrf_breaks_equal_scores_by_hit_id():
    fused = rank.rrf([Hit(id=9, asset_id="a", source="t")], [Hit(id=2, asset_id="b", source="t")])
    assert [h.id for h in fused] == [2, 9]


def test_grouping_keeps_each_assets_best_hits_in_rank_order_when_moments_are_capped():
    hits = [Hit(id=i, asset_id=a, source="t", score=10 - i) for i, a in enumerate("abaab")]
    groups = rank.group_hits(hits, moments=2)
    assert [g.asset_id for g in groups] == ["a", "b"]
    assert [h.id for h in groups[0].hits] == [0, 2] and groups[0].score == 10


def test_lookalikes_put_near_duplicates_first_with_their_smallest_distance():
    emb = [[Hit(id=1, asset_id="x", source="image", keyframe_index=0, similarity=0.99),
            Hit(id=2, asset_id="y", source="image", keyframe_index=0, similarity=0.5)]]
    pdq = [[Hit(id=3, asset_id="y", source="image", keyframe_index=0, pdq_distance=20)],
           [Hit(id=4, asset_id="y", source="image", keyframe_index=0, pdq_distance=8)]]
    ranked = rank.merge_lookalikes(emb, pdq)
    assert [(h.asset_id, h.pdq_distance) for h in ranked] == [("y", 8), ("x", None)]
    assert ranked[0].score == pytest.approx(1 + 248 / 256, abs=1e-6) and ranked[1].score == 0.99


def test_the_pool_grows_until_enough_groups_and_stops_at_the_maximum():
    asked: list[int] = []

    def fetch(pool: int) -> tuple[list[Group], bool]:
        asked.append(pool)
        return [Group(i) for i in range(pool // 10)], True

    assert len(rank.grow(fetch, need=30, start=50, max_pool=4000)) >= 30 and asked == [50, 200, 800]
    asked.clear()
    rank.grow(fetch, need=10_000, start=50, max_pool=1000)
    assert asked == [50, 200, 800, 1000]


def test_the_pool_stops_growing_when_candidates_run_out():
    calls = []
    rank.grow(lambda pool: (calls.append(pool) or [], False), need=5, start=50, max_pool=4000)
    assert calls == [50]


def test_spread_keeps_the_first_and_last_of_evenly_spaced_items():
    assert rank.spread(list(range(10)), 4) == [0, 3, 6, 9]
    assert rank.spread([1, 2], 8) == [1, 2] and rank.spread([1, 2, 3], 1) == [1]


def test_a_snippet_marks_matched_words_and_escapes_everything_else():
    text = "<b>ferry</b> & bike"
    plain, marked, matched = present.snippet(text, f"<b>{MARK_START}ferry{MARK_STOP}</b> & bike")
    assert matched and plain == text
    assert marked == "&lt;b&gt;<mark>ferry</mark>&lt;/b&gt; &amp; bike"


def test_a_snippet_without_matched_words_is_the_shortened_text():
    text = "word " * 100
    plain, _marked, matched = present.snippet(text, "word word")
    assert not matched and plain.endswith(" …") and len(plain) <= present.SNIPPET_CHARS + 2
