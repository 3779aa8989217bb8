"""Statements of reasons in the EU DSA Transparency Database layout: the documented fields and rules, the
taxonomy mapping, and the export for a range of days as JSON and CSV (command and API)."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from apps.insights.models import Language
from apps.moderation import dsa, sor_export
from apps.moderation.models import Decision
from apps.moderation.taxonomy import TAXONOMY
from tests.conftest import ROOT, worker_env
from tests.moderation.helpers import api, make_asset, make_user
from tests.moderation.test_console import seed_moderation

#: The attributes of a statement as the database's API documentation lists them
#: (transparency.dsa.ec.europa.eu/page/api-documentation, "Statement Attributes").
DOCUMENTED = [
    "decision_visibility", "decision_visibility_other", "decision_monetary", "decision_monetary_other",
    "decision_provision", "decision_account", "account_type", "decision_facts", "decision_ground",
    "decision_ground_reference_url", "illegal_content_legal_ground", "illegal_content_explanation",
    "incompatible_content_ground", "incompatible_content_explanation", "incompatible_content_illegal",
    "content_type", "content_type_other", "category", "category_addition", "category_specification", "content_id",
    "category_specification_other", "territorial_scope", "content_language", "content_date", "application_date",
    "end_date_account_restriction", "end_date_monetary_restriction", "end_date_service_restriction",
    "end_date_visibility_restriction", "source_type", "source_identity", "automated_detection",
    "automated_decision", "puid",
]
REQUIRED = {"decision_ground", "category", "content_type", "content_date", "application_date", "decision_facts",
            "source_type", "automated_detection", "automated_decision", "puid"}

VALID = {"puid": "TK421", "decision_visibility": ["DECISION_VISIBILITY_CONTENT_DISABLED"],
         "decision_ground": "DECISION_GROUND_INCOMPATIBLE_CONTENT", "incompatible_content_ground": "ToS 4.2",
         "incompatible_content_explanation": "threats", "category": "STATEMENT_CATEGORY_CYBER_VIOLENCE",
         "content_type": ["CONTENT_TYPE_VIDEO"], "content_date": "2026-01-02", "application_date": "2026-01-03",
         "territorial_scope": ["DE", "FR"], "decision_facts": "facts", "source_type": "SOURCE_VOLUNTARY",
         "automated_detection": "Yes", "automated_decision": "AUTOMATED_DECISION_FULLY"}


# ------------------------------------------------------------------ the documented fields and rules
def test_the_field_list_is_the_documented_one() -> None:
    assert sorted(dsa.FIELD_NAMES) == sorted(DOCUMENTED)
    assert {f.name for f in dsa.FIELDS if f.required} == REQUIRED


def test_a_complete_statement_validates() -> None:
    assert dsa.validate(VALID) == []


@pytest.mark.parametrize(("change", "problem"), [
    ({"puid": None}, "puid: required"),
    ({"puid": "a/b"}, "puid: only letters"),
    ({"category": "STATEMENT_CATEGORY_PORN"}, "category: not allowed"),
    ({"content_type": "CONTENT_TYPE_VIDEO"}, "content_type: must be a list"),
    ({"territorial_scope": ["US"]}, "territorial_scope: not allowed: US"),
    ({"content_language": "en"}, "content_language: not allowed"),
    ({"content_date": "02/01/2026"}, "content_date: a date"),
    ({"application_date": "2019-12-31"}, "application_date: a date"),
    ({"decision_facts": "x" * 5001}, "decision_facts: text of at most 5000"),
    ({"decision_visibility": None}, "at least one restriction"),
    ({"incompatible_content_ground": None}, "incompatible_content_ground: required"),
    ({"illegal_content_legal_ground": "§ 1"}, "illegal_content_legal_ground: only with the other"),
    ({"decision_ground": "DECISION_GROUND_ILLEGAL_CONTENT"}, "illegal_content_legal_ground: required"),
    ({"decision_visibility": ["DECISION_VISIBILITY_OTHER"]}, "decision_visibility_other: required"),
    ({"source_identity": "a notifier"}, "source_identity: not given"),
    ({"automated_detection": True}, "automated_detection: not allowed"),
    ({"content_id": {"EAN-13": "123"}}, "content_id: an object"),
    ({"platform_name": "x"}, "platform_name: not a documented field"),
])
def test_a_broken_statement_is_refused_naming_the_field(change: dict, problem: str) -> None:
    st = {k: v for k, v in {**VALID, **change}.items() if v is not None}
    problems = dsa.validate(st)
    assert any(problem in p for p in problems), problems


def test_every_builtin_category_maps_onto_documented_values() -> None:
    for code, name, _severity, _description in TAXONOMY:
        m = dsa.mapping_for(code, name)
        assert m.category in dsa.CATEGORY and set(m.keywords) <= set(dsa.KEYWORDS), code
        assert code in dsa.CATEGORY_MAP, code
    custom = dsa.mapping_for("violence/arson", "Arson")
    assert (custom.category, custom.other_keyword, custom.exact) == ("STATEMENT_CATEGORY_VIOLENCE", "Arson", False)
    assert dsa.mapping_for("gambling", "Gambling").category == dsa.OTHER_TC


# ------------------------------------------------------------------ the export from the database
def decision(asset, outcome, codes, *, when, automated, ground="Blocked under policy default@v1"):
    d = Decision.objects.create(asset=asset, outcome=outcome, reason_codes=codes, automated_detection=True,
                                automated_decision=automated, ground=ground)
    Decision.objects.filter(pk=d.pk).update(created_at=when)
    return d


@pytest.fixture
def decisions(transactional_db):
    seed_moderation()
    up = make_user("olga", "uploader")
    video, doc = make_asset(up, kind="video"), make_asset(up, kind="text")
    Language.objects.create(asset=video, stage="language", engine="lid", engine_version="l@1", source="transcript",
                            language="en", score=0.97)
    day = datetime(2026, 3, 10, 12, tzinfo=UTC)
    auto = decision(video, "reject", ["hate/slur"], when=day, automated=True)
    human = decision(doc, "reject", ["profanity", "harassment/threat"], when=day.replace(day=11, hour=23),
                     automated=False, ground="A moderator: reject (profanity, harassment/threat) — repeated threats")
    decision(doc, "approve", [], when=day, automated=True)  # restricts nothing: no statement
    decision(doc, "reject", ["spam/links"], when=day.replace(day=12, hour=0), automated=True)  # outside the range
    return auto, human


def test_restricting_decisions_in_the_range_become_valid_statements(decisions) -> None:
    auto, human = decisions
    sts = sor_export.statements_between(datetime(2026, 3, 10).date(), datetime(2026, 3, 11).date())
    assert [s["puid"] for s in sts] == [str(auto.pk), str(human.pk)]
    for s in sts:
        assert dsa.validate(s) == [], s
        assert set(s) <= set(DOCUMENTED)
        assert s["decision_ground"] == "DECISION_GROUND_INCOMPATIBLE_CONTENT"
        assert s["source_type"] == "SOURCE_VOLUNTARY" and s["automated_detection"] == "Yes"
        assert s["territorial_scope"] == sorted(dsa.EEA_COUNTRIES)
    a, h = sts
    assert a["category"] == "STATEMENT_CATEGORY_ILLEGAL_OR_HARMFUL_SPEECH"
    assert a["category_specification"] == ["KEYWORD_HATE_SPEECH"]
    assert a["automated_decision"] == "AUTOMATED_DECISION_FULLY"
    assert a["content_type"] == ["CONTENT_TYPE_VIDEO"] and a["content_language"] == "EN"
    assert a["application_date"] == "2026-03-10"
    # the most severe reason is the main category; the others are additions
    assert h["category"] == "STATEMENT_CATEGORY_CYBER_VIOLENCE"
    assert h["category_addition"] == ["STATEMENT_CATEGORY_OTHER_VIOLATION_TC"]
    assert set(h["category_specification"]) == {"KEYWORD_CYBER_BULLYING_INTIMIDATION", "KEYWORD_OTHER"}
    assert h["category_specification_other"] == "Profanity"
    assert h["automated_decision"] == "AUTOMATED_DECISION_NOT_AUTOMATED"
    assert h["content_type"] == ["CONTENT_TYPE_TEXT"] and "content_language" not in h
    assert "repeated threats" in h["decision_facts"] and "olga" not in json.dumps(h)


def test_json_and_csv_carry_the_same_statements(decisions) -> None:
    sts = sor_export.statements_between(datetime(2026, 3, 10).date(), datetime(2026, 3, 11).date(),
                                        territorial_scope=["de", "AT"])
    assert sts[0]["territorial_scope"] == ["AT", "DE"]
    assert json.loads(sor_export.render(sts, "json")) == {"statements": sts}
    rows = list(csv.DictReader(io.StringIO(sor_export.render(sts, "csv"))))
    assert list(rows[0]) == list(dsa.FIELD_NAMES)
    assert [dsa.from_csv_row(r) for r in rows] == sts


@pytest.mark.parametrize(("start", "end", "scope", "message"), [
    ("2026-03-11", "2026-03-10", ["DE"], "ends \\(to 2026-03-10\\) before it starts"),
    ("2025-01-01", "2026-03-10", ["DE"], "at most 366 days"),
    ("2026-03-10", "2026-03-11", ["US", "DE"], "not EU/EEA country codes: US"),
    ("2026-03-10", "2026-03-11", [""], "at least one"),
])
def test_bad_ranges_and_territories_are_refused(transactional_db, start, end, scope, message) -> None:
    with pytest.raises(sor_export.ExportError, match=message):
        sor_export.statements_between(datetime.fromisoformat(start).date(), datetime.fromisoformat(end).date(),
                                      territorial_scope=scope)


def manage(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=worker_env(), capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)


def test_the_command_writes_json_and_csv(decisions, tmp_path) -> None:
    auto, human = decisions
    out = tmp_path / "sor.json"
    res = manage("export_sor", "--from", "2026-03-10", "--to", "2026-03-11", "--format", "json", "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert "2 statement(s)" in res.stderr
    body = json.loads(out.read_text())
    assert [s["puid"] for s in body["statements"]] == [str(auto.pk), str(human.pk)]
    assert all(dsa.validate(s) == [] for s in body["statements"])
    res = manage("export_sor", "--from", "2026-03-10", "--to", "2026-03-10", "--format", "csv", "--territory", "FR")
    assert res.returncode == 0, res.stderr
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert [r["puid"] for r in rows] == [str(auto.pk)] and rows[0]["territorial_scope"] == '["FR"]'


# ------------------------------------------------------------------ the API
URL = "/api/v1/decisions/statements-of-reasons"


def test_moderators_get_json_and_csv(decisions) -> None:
    auto, human = decisions
    c = api(make_user("mia", "moderator"))
    resp = c.get(URL, {"from": "2026-03-10", "to": "2026-03-11"})
    assert resp.status_code == 200 and resp["Content-Type"] == "application/json"
    assert [s["puid"] for s in resp.json()["statements"]] == [str(auto.pk), str(human.pk)]
    assert all(dsa.validate(s) == [] for s in resp.json()["statements"])
    for got in (c.get(URL, {"from": "2026-03-10", "to": "2026-03-11", "format": "csv"}),
                c.get(URL + ".csv", {"from": "2026-03-10", "to": "2026-03-11"}),
                c.get(URL, {"from": "2026-03-10", "to": "2026-03-11"}, HTTP_ACCEPT="text/csv")):
        assert got.status_code == 200 and got["Content-Type"] == "text/csv; charset=utf-8"
        rows = [dsa.from_csv_row(r) for r in csv.DictReader(io.StringIO(got.content.decode()))]
        assert rows == resp.json()["statements"]
    assert 'filename="statements-of-reasons-2026-03-10-2026-03-11.csv"' in got["Content-Disposition"]


@pytest.mark.parametrize(("params", "status", "code", "message"), [
    ({"to": "2026-03-11"}, 400, "invalid", "Missing parameter(s): from"),
    ({"from": "10.03.2026", "to": "2026-03-11"}, 400, "invalid", "from must be a date"),
    ({"from": "2026-03-10", "to": "2026-03-11", "territory": "XX"}, 400, "invalid", "not EU/EEA"),
    ({"from": "2026-03-10", "to": "2026-03-11", "format": "xml"}, 404, "unknown_format", "use one of: csv, json"),
])
def test_bad_requests_get_json_errors(decisions, params, status, code, message) -> None:
    resp = api(make_user("mia", "moderator")).get(URL, {**params})
    assert resp.status_code == status and resp["Content-Type"] == "application/json", resp.content
    assert resp.json()["error"]["code"] == code and message in resp.json()["error"]["message"]


def test_a_reversed_range_holds_no_day_and_no_statement(decisions) -> None:
    """As every other time filter of the API: `from` after `to` is an empty range, not an error."""
    c = api(make_user("mia", "moderator"))
    resp = c.get(URL, {"from": "2026-03-12", "to": "2026-03-10"})
    assert resp.status_code == 200, resp.content
    assert resp.json() == {"statements": []}
    assert "Link" not in resp
    assert c.get(URL, {"from": "2026-03-12", "to": "2026-03-10", "territory": "XX"}).status_code == 400


def test_a_range_longer_than_366_days_comes_in_pages_of_366_days(decisions) -> None:
    """Never truncated silently: the answer covers the first 366 days and links the rest (a
    `Link: <…>; rel="next"` header, in both formats: the JSON body stays the DSA bulk body); the
    last page has no link."""
    auto, human = decisions
    c = api(make_user("mia", "moderator"))
    first = c.get(URL, {"from": "2025-03-09", "to": "2026-03-11", "territory": "DE"})
    assert first.status_code == 200, first.content
    assert first.json() == {"statements": []}  # 2025-03-09 … 2026-03-09
    nxt = first["Link"].removeprefix("<").removesuffix('>; rel="next"')
    assert "from=2026-03-10" in nxt and "to=2026-03-11" in nxt and "territory=DE" in nxt
    second = c.get(nxt)
    assert [s["puid"] for s in second.json()["statements"]] == [str(auto.pk), str(human.pk)]
    assert "Link" not in second
    as_csv = c.get(URL, {"from": "2025-03-09", "to": "2026-03-11", "format": "csv"})
    assert as_csv.status_code == 200 and 'rel="next"' in as_csv["Link"]
    far = c.get(URL, {"from": "9999-01-01", "to": "9999-12-31"})  # the last representable days
    assert far.status_code == 200 and far.json() == {"statements": []}


def test_uploaders_may_not_export(decisions) -> None:
    resp = api(make_user("eve", "uploader")).get(URL + ".csv", {"from": "2026-03-10", "to": "2026-03-11"})
    assert resp.status_code == 403 and resp["Content-Type"] == "application/json"
