"""Every section of an evaluation, scored on the shipped dataset with engines whose answers are
known: the ground truth itself (every score perfect) and a deliberately wrong set (every score at
its worst). The report and the JSON must hold every section; the draft policy must import."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from apps.moderation import policy_io
from apps.moderation.policy import validate_rules
from apps.moderation.taxonomy import DEFAULT_RULES, TAXONOMY
from tests.evaluation.known_answers import BrokenEngines, PerfectEngines
from workers.evaluation import dataset as ds
from workers.evaluation import output, report, run, shipped

SECTIONS = ("speech", "ocr", "language", "scenes", "detection", "tags", "moderation", "near_duplicates", "latency")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> ds.Dataset:
    root = shipped.generate(tmp_path_factory.mktemp("shipped"))
    # a generated image with boxes, so mAP is checked whether or not the Debian photos are installed
    manifest = json.loads((root / "manifest.json").read_text())
    (root / "boxes.png").write_bytes((root / "slides/slide-0.png").read_bytes())
    manifest["items"].append({"file": "boxes.png", "kind": "image",
                              "objects": [{"label": "chart", "box": [0.1, 0.1, 0.5, 0.5]},
                                          {"label": "title", "box": [0.0, 0.0, 1.0, 0.05]}]})
    (root / "manifest.json").write_text(json.dumps(manifest))
    return ds.load(root)


def _run(dataset: ds.Dataset, engines: object) -> dict:
    return run.evaluate(dataset, engines, rules=DEFAULT_RULES, cut_tolerance=0.5, k=5, target_precision=0.9)


def test_the_shipped_dataset_labels_every_kind_of_ground_truth(dataset: ds.Dataset):
    kinds = {i.kind for i in dataset.items}
    assert kinds == {"audio", "video", "image", "text"}
    assert any(i.transcript for i in dataset.items) and any(i.ocr_text for i in dataset.items)
    assert any(i.cuts for i in dataset.items) and any(i.objects for i in dataset.items)
    assert {c for i in dataset.items for c, v in i.moderation.items() if v} >= {
        "harassment/threat", "harassment/insult", "profanity", "spam/links", "self_harm"}
    assert len(dataset.near_duplicates) >= 3
    assert {i.language for i in dataset.items if i.language} >= {"en", "de", "fr"}


def test_perfect_engines_score_perfectly_on_every_metric(dataset: ds.Dataset):
    r = _run(dataset, PerfectEngines(dataset))
    assert not r["skipped"]
    assert (r["speech"]["wer"], r["speech"]["cer"], r["speech"]["english_normalized_wer"]) == (0.0, 0.0, 0.0)
    assert (r["ocr"]["wer"], r["ocr"]["cer"]) == (0.0, 0.0)
    assert r["language"]["accuracy"] == 1.0
    assert (r["scenes"]["precision"], r["scenes"]["recall"], r["scenes"]["f1"]) == (1.0, 1.0, 1.0)
    assert (r["detection"]["precision"], r["detection"]["recall"], r["detection"]["map"]) == (1.0, 1.0, 1.0)
    assert (r["tags"]["recall_at_5"], r["tags"]["recall_at_1"]) == (1.0, pytest.approx(
        sum(len(i.tags) == 1 for i in dataset.items if i.tags) / sum(len(i.tags) for i in dataset.items if i.tags)))
    for category, e in r["moderation"].items():
        a = e["at_review"]
        if e["positives"]:
            assert (a["precision"], a["recall"], a["f1"], e["roc_auc"]) == (1.0, 1.0, 1.0, 1.0), category
            assert e["suggested"]["point"]["threshold"] == 1.0
            assert e["suggested"]["threshold"] == 0.5  # halfway to the negatives' 0.0: a margin both sides
        else:  # nothing to find: nothing flagged, precision undefined rather than 0 or 1
            assert (a["tp"], a["fp"], a["precision"], a["false_positive_rate"]) == (0, 0, None, 0.0), category
    for row in r["near_duplicates"]["sweep"]:
        assert row["recall"] == 1.0
        if row["threshold"] <= 64:
            assert row["false_matches"] == 0
    assert set(r["latency"]) >= {"transcribe", "ocr", "scenes", "objects", "tags", "phash", "language"}


def test_broken_engines_score_worst_on_every_metric(dataset: ds.Dataset):
    r = _run(dataset, BrokenEngines(dataset))
    assert (r["speech"]["wer"], r["speech"]["cer"]) == (1.0, 1.0)
    assert r["ocr"]["cer"] == 1.0
    assert r["language"]["accuracy"] == 0.0
    assert (r["scenes"]["precision"], r["scenes"]["recall"]) == (0.0, 0.0)
    assert (r["detection"]["precision"], r["detection"]["recall"], r["detection"]["map"]) == (0.0, 0.0, 0.0)
    assert r["tags"]["recall_at_5"] == 0.0
    for category, e in r["moderation"].items():
        a = e["at_review"]
        if e["positives"]:
            assert (a["tp"], a["recall"], e["roc_auc"]) == (0, 0.0, 0.0), category
            assert e["suggested"]["point"] is None  # no threshold reaches 0.9 precision
        if e["negatives"]:
            assert a["false_positive_rate"] == 1.0, category
    assert all(row["recall"] == 0.0 for row in r["near_duplicates"]["sweep"])


def test_the_report_holds_every_section_and_plot_and_the_comparison(dataset: ds.Dataset, tmp_path: Path):
    good = _run(dataset, PerfectEngines(dataset))
    bad = _run(dataset, BrokenEngines(dataset))
    first = output.write(tmp_path / "broken", bad, base_rules=DEFAULT_RULES)
    assert first.draft is None  # no threshold met the target: no draft
    written = output.write(tmp_path / "perfect", good, base_rules=DEFAULT_RULES,
                           other=output.load_results(tmp_path / "broken"), other_label="broken run")
    page = written.report.read_text()
    for section in (*SECTIONS, "comparison"):
        assert f'<section id="{section}">' in page, section
    for category in good["moderation"]:
        for plot in ("PR", "ROC", "Threshold sweep"):
            assert f'aria-label="{plot} {category}"' in page
    assert page.count('aria-label="at review') == len(good["moderation"])
    assert "No file is labelled yes" in page  # categories without a positive example say so
    assert 'aria-label="Latency transcribe"' in page and 'aria-label="Near-duplicate recall"' in page
    assert "http" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")  # self-contained: no link out
    saved = json.loads(written.results.read_text())
    assert set(SECTIONS) <= saved.keys()
    deltas = {row["metric"]: row for row in saved["comparison"]}
    assert deltas["speech.wer"]["before"] == 1.0 and deltas["speech.wer"]["delta"] == -1.0
    assert deltas["scenes.recall"]["delta"] == 1.0
    assert deltas["moderation.harassment/threat.at_review.f1"]["after"] == 1.0
    assert "<td>oracle</td><td>broken</td><td>perfect</td>" in page  # engine versions side by side


def test_the_draft_policy_sets_the_suggested_thresholds_and_imports(dataset: ds.Dataset, tmp_path: Path):
    good = _run(dataset, PerfectEngines(dataset))
    written = output.write(tmp_path, good, base_rules=DEFAULT_RULES)
    parsed = policy_io.parse_yaml(written.draft.read_bytes())
    assert validate_rules(parsed.rules, [c for c, *_ in TAXONOMY]) == ([], [])
    cats = parsed.rules["categories"]
    assert cats["harassment/threat"]["review"] == 0.5
    assert cats["harassment/threat"]["block"] == 1.01  # untouched: above the new review threshold
    assert cats["profanity"]["review"] == 0.5
    assert cats["profanity"]["block"] == 1.01
    assert cats["sexual/explicit_nudity"] == DEFAULT_RULES["categories"]["sexual/explicit_nudity"]  # no positives


def test_comparison_lists_numbers_only_one_run_has():
    rows = report.compare({"speech": {"wer": 0.2}, "scenes": None}, {"speech": {"wer": 0.5}, "ocr": {"cer": 0.1}})
    got = {r["metric"]: r for r in rows}
    assert got["speech.wer"]["delta"] == pytest.approx(-0.3)
    assert got["ocr.cer"]["after"] is None and got["ocr.cer"]["delta"] is None


def test_a_manifest_with_a_problem_is_refused_with_its_reason(tmp_path: Path):
    (tmp_path / "a.png").write_bytes(b"x")
    for manifest, reason in (
            ({"items": []}, "non-empty"),
            ({"items": [{"file": "missing.png", "kind": "image"}]}, "no such file"),
            ({"items": [{"file": "../etc/passwd", "kind": "image"}]}, "inside the dataset"),
            ({"items": [{"file": "a.png", "kind": "picture"}]}, "kind must be"),
            ({"items": [{"file": "a.png", "kind": "image", "objects": [{"label": "x", "box": [1, 1, 0, 0]}]}]},
             "x1 < x2"),
            ({"items": [{"file": "a.png", "kind": "image", "moderation": {"profanity": "yes"}}]}, "true or false"),
            ({"items": [{"file": "a.png", "kind": "image"}], "near_duplicates": [["a.png", "b.png"]]}, "pairs")):
        (tmp_path / "manifest.json").write_text(json.dumps(manifest))
        with pytest.raises(ds.DatasetError, match=reason):
            ds.load(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ds.DatasetError, match="not readable JSON"):
        ds.load(tmp_path)


def test_a_draft_raises_a_block_threshold_that_would_sit_below_the_new_review_threshold():
    results = {"moderation": {"profanity": {"files": 4, "suggested": {
        "target": "precision >= 0.9", "threshold": 0.6, "point": {"threshold": 0.7, "precision": 1.0, "recall": 1.0}}}}}
    rules, notes = report.draft_rules(results, {"categories": {"profanity": {"review": 0.2, "block": 0.4}}})
    assert rules["categories"]["profanity"] == {"review": 0.6, "block": 0.6}
    assert notes == ["profanity: review 0.2 → 0.6 (precision 1.000, recall 1.000 on 4 files)"]


def test_a_recall_target_suggests_the_highest_threshold_that_finds_every_positive(dataset: ds.Dataset):
    r = run.evaluate(dataset, PerfectEngines(dataset), rules=DEFAULT_RULES, target_precision=None, target_recall=1.0)
    threat = r["moderation"]["harassment/threat"]["suggested"]
    assert threat["target"] == "recall >= 1.0"
    assert (threat["point"]["threshold"], threat["threshold"]) == (1.0, 0.5)
    broken = run.evaluate(dataset, BrokenEngines(dataset), rules=DEFAULT_RULES, target_precision=None,
                          target_recall=1.0)
    # the positives score 0: only flagging everything finds them all
    assert broken["moderation"]["harassment/threat"]["suggested"]["point"]["threshold"] == 0.0
