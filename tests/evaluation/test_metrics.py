"""The quality measures on hand-computed cases (every figure below is worked out in the comment)."""

from __future__ import annotations

import pytest

from workers.evaluation import metrics as m


def test_word_and_character_error_rates_count_edits_over_the_reference():
    # "the cat sat" → "the bat sat down": one substitution, one insertion over 3 words
    assert m.wer("The cat sat.", "the bat sat down") == pytest.approx(2 / 3)
    # characters "the cat sat" (11) → "the bat sat down" : c→b + " down" (5 inserts) = 6 edits
    assert m.cer("The cat sat.", "the bat sat down") == pytest.approx(6 / 11)
    assert m.wer("same words", "Same, words!") == 0.0
    assert m.wer("one two", "") == 1.0


def test_normalized_wer_treats_spelled_and_written_numbers_as_one_word():
    assert m.wer("It opens at nine.", "It opens at 9") == pytest.approx(1 / 4)
    assert m.normalized_wer("It opens at nine.", "It opens at 9") == 0.0
    assert m.corpus_wer([("at nine", "at 9"), ("the cat", "the bat")]) == pytest.approx(1 / 4)


def test_corpus_error_rates_weigh_each_file_by_its_length():
    # 1 edit of 1 word + 0 edits of 3 words = 1/4 (the mean of per-file rates would be 1/2)
    r = m.corpus_error_rates([("hello", "yellow"), ("a b c", "a b c")])
    assert r["wer"] == pytest.approx(1 / 4)
    assert r["reference_words"] == 4
    assert m.corpus_error_rates([])["wer"] is None


def test_cut_matching_is_one_to_one_within_the_tolerance():
    # truth 1, 2, 3; found 1.2 (hit), 1.3 (second claim on the same cut: miss), 3.9 (too far), 2.4 (hit)
    s = m.cut_scores([([1.0, 2.0, 3.0], [1.2, 1.3, 3.9, 2.4])], tolerance=0.5)
    assert (s["matched"], s["precision"], s["recall"]) == (2, pytest.approx(0.5), pytest.approx(2 / 3))
    assert s["f1"] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    assert m.cut_scores([([], [])], 0.5)["precision"] is None


def test_iou_of_overlapping_and_disjoint_boxes():
    # two unit squares overlapping by half: inter 0.5, union 1.5
    assert m.iou((0, 0, 1, 1), (0.5, 0, 1.5, 1)) == pytest.approx(1 / 3)
    assert m.iou((0, 0, 1, 1), (2, 2, 3, 3)) == 0.0


def test_detection_precision_recall_and_average_precision():
    truth = [m.Box("dog", (0, 0, 0.5, 0.5)), m.Box("dog", (0.5, 0.5, 1, 1))]
    found = [m.Box("dog", (0, 0, 0.5, 0.5), 0.9),        # hit, rank 1
             m.Box("dog", (0, 0.6, 0.3, 0.9), 0.8),      # no overlap: false positive, rank 2
             m.Box("dog", (0.5, 0.5, 1, 1), 0.7),        # hit, rank 3
             m.Box("cat", (0, 0, 1, 1), 0.6)]            # no true cat
    s = m.detection_scores([(truth, found)], iou_min=0.5)
    assert (s["matched"], s["found"], s["true"]) == (2, 4, 2)
    assert s["precision"] == pytest.approx(0.5) and s["recall"] == pytest.approx(1.0)
    # dog PR points: (r .5, p 1), (r .5, p .5), (r 1, p 2/3) → AP = .5*1 + .5*(2/3)
    assert s["labels"]["dog"]["ap"] == pytest.approx(0.5 + 1 / 3)
    assert s["labels"]["cat"]["ap"] is None  # no true cat: no AP
    assert s["map"] == pytest.approx(0.5 + 1 / 3)


def test_labels_without_boxes_match_by_label_and_have_no_ap():
    s = m.detection_scores([([m.Box("dog")], [m.Box("dog", (0, 0, 1, 1), 0.5), m.Box("dog", (0, 0, 1, 1), 0.4)])])
    assert (s["precision"], s["recall"], s["map"]) == (0.5, 1.0, None)


def test_tag_recall_at_k_matches_a_tag_inside_a_longer_label():
    items = [(["eagle", "sky"], ["kite", "bald eagle", "vulture"]), (["dog"], ["cat", "hotdog"])]
    assert m.recall_at_k(items, 1) == 0.0
    assert m.recall_at_k(items, 2) == pytest.approx(1 / 3)  # eagle only: "hotdog" is not the word dog


def test_sweep_gives_pr_roc_and_the_threshold_for_a_target():
    labels = [True, True, False, True, False]
    scores = [0.9, 0.8, 0.7, 0.4, 0.1]
    points = m.sweep(labels, scores)
    assert [p["threshold"] for p in points[1:]] == [0.9, 0.8, 0.7, 0.4, 0.1]
    assert points[0]["tp"] == points[0]["fp"] == 0  # above the top score nothing is flagged
    at = {p["threshold"]: p for p in points}
    assert (at[0.7]["precision"], at[0.7]["recall"]) == (pytest.approx(2 / 3), pytest.approx(2 / 3))
    assert (at[0.4]["precision"], at[0.4]["recall"]) == (pytest.approx(3 / 4), 1.0)
    # ROC: (0,0) (0,1/3) (0,2/3) (1/2,2/3) (1/2,1) (1,1) → area 2/3*1/2 + 1*1/2 = 5/6
    assert m.auc(m.roc_curve(points)) == pytest.approx(5 / 6)
    assert m.threshold_for(points, precision=1.0)["threshold"] == 0.8
    assert m.threshold_for(points, precision=0.75)["threshold"] == 0.4
    assert m.threshold_for(points, recall=1.0)["threshold"] == 0.4
    assert m.threshold_for(points, recall=0.5)["threshold"] == 0.8
    assert m.threshold_for(m.sweep([False, False], [0.3, 0.2]), precision=0.9) is None


def test_confusion_counts_flag_at_or_above_the_threshold():
    assert m.confusion([True, False, True, False], [0.5, 0.5, 0.49, 0.1], 0.5) == {"tp": 1, "fp": 1, "fn": 1, "tn": 1}


def test_near_duplicate_sweep_counts_recall_and_false_matches_per_threshold():
    distances = {("a", "a2"): 10, ("a", "b"): 40, ("a2", "b"): 70, ("b", "b2"): 30,
                 ("a", "b2"): 90, ("a2", "b2"): 100}
    rows = m.near_duplicate_sweep(distances, [("a2", "a"), ("b", "b2")], [0, 10, 31, 40, 128])
    assert [r["recall"] for r in rows] == [0.0, 0.5, 1.0, 1.0, 1.0]
    assert [r["false_matches"] for r in rows] == [0, 0, 0, 1, 4]
    assert rows[3]["false_match_rate"] == pytest.approx(1 / 4)


def test_latency_percentiles_and_throughput():
    s = m.latency_stats([0.1, 0.2, 0.3, 0.4], units=8)
    assert s["p50_s"] == pytest.approx(0.25) and s["max_s"] == 0.4
    assert s["throughput_per_s"] == pytest.approx(8 / 1.0)
    assert m.latency_stats([])["mean_s"] is None
