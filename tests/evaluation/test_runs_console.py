"""The console lists recorded evaluation runs and serves each run's report inert."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.test import Client

from apps.pipeline.evaluations import record_run
from tests.moderation.helpers import make_user

pytestmark = pytest.mark.django_db

RESULTS = {"dataset": {"name": "shipped", "files": 12}, "engines": {"transcribe": "whisper@1"},
           "speech": {"wer": 0.25, "cer": 0.1}, "scenes": {"precision": 1.0, "recall": 0.5, "f1": 0.6667},
           "tags": {"k": 5, "recall_at_5": 0.5},
           "moderation": {"harassment/threat": {"at_review": {"f1": 1.0}}, "spam/links": {"at_review": {"f1": 0.0}}}}


def results_file(folder: Path, results: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps(results))
    return folder / "results.json"


def client(role: str) -> Client:
    c = Client()
    c.force_login(make_user(f"u-{role}", role))
    return c


def test_moderators_see_runs_with_their_headline_figures_and_open_the_report(tmp_path: Path):
    report = tmp_path / "report.html"
    report.write_text('<html><body><h1>Run</h1><script>alert(1)</script><svg></svg></body></html>')
    first = record_run(results_file(tmp_path / "a", RESULTS), report=report, out_dir=tmp_path / "a",
                       policy="default")
    second = record_run(results_file(tmp_path / "b", {**RESULTS, "speech": {"wer": 0.2, "cer": 0.08}}),
                        report=report, out_dir=tmp_path / "b", policy="draft", compared_to=str(tmp_path / "a"))
    assert second.compared_to == first
    assert first.headline == {"speech_wer": 0.25, "ocr_cer": None, "language_accuracy": None, "cuts_f1": 0.6667,
                              "objects_map": None, "tags_recall": 0.5, "moderation_macro_f1": 0.5}

    mod = client("moderator")
    html = mod.get("/console/evaluations/").content.decode()
    assert html.count('class="eval-run"') == 2 and "shipped" in html and "0.250" in html and "0.200" in html
    assert html.index("0.200") < html.index("0.250")  # newest first
    assert f"/console/evaluations/{second.pk}/report/" in html and "Evaluations</a>" in html

    r = mod.get(f"/console/evaluations/{second.pk}/report/")
    assert r.status_code == 200 and b"<h1>Run</h1>" in r.content
    csp = r["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "sandbox" in csp and "script-src" not in csp  # no script may run
    assert r["X-Content-Type-Options"] == "nosniff"
    numbers = mod.get(f"/console/evaluations/{first.pk}/results.json").json()
    assert numbers["speech"]["wer"] == 0.25


def test_runs_are_for_moderators_and_admins_only(tmp_path: Path):
    report = tmp_path / "report.html"
    report.write_text("<html></html>")
    run = record_run(results_file(tmp_path, RESULTS), report=report, out_dir=tmp_path, policy="default")
    uploader = client("uploader")
    for url in ("/console/evaluations/", f"/console/evaluations/{run.pk}/report/",
                f"/console/evaluations/{run.pk}/results.json"):
        assert uploader.get(url).status_code == 403
        assert Client().get(url).status_code == 302  # to the sign-in page
    assert client("admin").get("/console/evaluations/").status_code == 200
    assert "Evaluations</a>" not in uploader.get("/console/").content.decode()
