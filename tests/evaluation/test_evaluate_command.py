"""``manage.py evaluate`` end to end with the real engines on a small part of the shipped dataset:
the report, the JSON and the draft policy are written, a second run under the draft policy is
compared with the first, and bad input ends with a message, not a traceback."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from apps.pipeline.models import EvaluationRun
from workers.evaluation import shipped

SECTIONS = ("speech", "ocr", "language", "scenes", "detection", "tags", "moderation", "near_duplicates", "latency")
KEEP = ("speech/en-0.wav", "slides/", "near/", "video/", "photos/dog.jpg", "text/weather.txt", "text/threat.txt",
        "text/spam.txt", "text/de-news.txt", "text/profanity.txt")


@pytest.fixture(scope="module")
def small_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = shipped.generate(tmp_path_factory.mktemp("eval"))
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["items"] = [i for i in manifest["items"] if i["file"].startswith(KEEP)]
    files = {i["file"] for i in manifest["items"]}
    manifest["near_duplicates"] = [p for p in manifest["near_duplicates"] if set(p) <= files]
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


@pytest.mark.django_db
def test_evaluate_writes_the_report_json_and_draft_and_compares_two_policies(small_set: Path, tmp_path: Path):
    out = StringIO()
    call_command("evaluate", str(small_set), "--out", str(tmp_path / "a"), stdout=out)
    first = json.loads((tmp_path / "a" / "results.json").read_text())
    page = (tmp_path / "a" / "report.html").read_text()
    for section in SECTIONS:
        assert f'<section id="{section}">' in page
        assert section in first
    # detection: scored when a detector is configured, otherwise skipped with the reason
    assert first["detection"] is not None or "objects" in first["skipped"]
    assert first["speech"]["wer"] <= 0.5 and first["ocr"]["cer"] <= 0.2
    assert first["language"]["accuracy"] >= 0.75
    assert first["scenes"]["recall"] == 1.0 and first["scenes"]["precision"] == 1.0
    assert first["moderation"]["harassment/threat"]["at_review"]["recall"] == 1.0
    at31 = next(r for r in first["near_duplicates"]["sweep"] if r["threshold"] == 31)
    assert (at31["recall"], at31["false_matches"]) == (1.0, 0)
    assert {"transcribe", "ocr", "scenes", "phash", "text_moderation"} <= first["latency"].keys()
    assert "report " in out.getvalue() and "speech   WER" in out.getvalue()

    draft = tmp_path / "a" / "policy-draft.yaml"
    assert draft.is_file()
    call_command("evaluate", str(small_set), "--out", str(tmp_path / "b"), "--policy", str(draft),
                 "--compare", str(tmp_path / "a"), stdout=StringIO())
    second = json.loads((tmp_path / "b" / "results.json").read_text())
    spam = second["moderation"]["spam/links"]
    assert spam["review_threshold"] == first["moderation"]["spam/links"]["suggested"]["threshold"]
    rows = {r["metric"]: r for r in second["comparison"]}
    assert rows["moderation.spam/links.review_threshold"]["before"] == 0.9
    assert '<section id="comparison">' in (tmp_path / "b" / "report.html").read_text()
    # both runs are recorded for the console, the second linked to the first it was compared with
    a, b = EvaluationRun.objects.order_by("created_at")
    assert {k for k in first if a.results.get(k) != first[k]} == set()
    assert b.results == second and b.compared_to == a
    assert a.headline["speech_wer"] == first["speech"]["wer"] and a.files == first["dataset"]["files"]
    assert a.report_html == page


@pytest.mark.parametrize(("args", "message"), [
    (["{tmp}/nowhere", "--out", "{tmp}/o"], "no manifest"),
    (["{tmp}", "--out", "{tmp}/o", "--compare", "{tmp}"], "not an evaluation run"),
    (["{tmp}", "--out", "{tmp}/o", "--policy", "{tmp}/missing.yaml"], "cannot read the policy"),
    (["{tmp}", "--out", "{tmp}/o", "--target-precision", "1.5"], "target-precision"),
    (["{tmp}", "--out", "{tmp}/o", "--k", "0"], "--k must be at least 1"),
])
def test_bad_input_ends_with_a_message(tmp_path: Path, args: list[str], message: str):
    with pytest.raises(CommandError, match=message):
        call_command("evaluate", *[a.format(tmp=tmp_path) for a in args], stdout=StringIO())
