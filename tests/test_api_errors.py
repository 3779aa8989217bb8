"""Requests that once crashed the API (found by schemathesis) now get a 4xx in the error envelope.

Each case failed with a 500 before its fix: a timestamp filter with an offset PostgreSQL refuses,
a bank name longer than the audit record's target column, a JSON array where an object belongs,
and a CSV import holding a lone carriage return.
"""

from __future__ import annotations

import io

import pytest

from apps.audit.models import AuditEvent
from apps.moderation.models import HashBank
from tests.moderation.helpers import api, make_user

pytestmark = pytest.mark.django_db
PNG_1PX = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x00\x00\x00\x00:~\x9bU\x00\x00\x00"
           b"\nIDATx\x9cc`\x00\x00\x00\x02\x00\x01H\xaf\xa4q\x00\x00\x00\x00IEND\xaeB`\x82")


@pytest.fixture
def admin() -> object:
    return api(make_user("ada", "admin"))


@pytest.mark.parametrize("url", ["/api/v1/assets/?created_before=0166-04-06T05:33:35-16:49",
                                 "/api/v1/assets/?created_after=2026-01-01T00:00:00%2B15:00",
                                 "/api/v1/audit/?since=2026-01-01T00:00:00-23:59"])
def test_a_timestamp_filter_with_an_offset_no_clock_shows_is_a_400_naming_the_parameter(admin, url):
    r = admin.get(url)
    assert r.status_code == 400, r.content
    detail = r.json()["error"]["detail"]
    assert any("UTC offset" in str(v) for v in detail.values()), detail


def test_a_timestamp_filter_within_the_real_offsets_still_filters(admin):
    assert admin.get("/api/v1/assets/?created_after=2026-01-01T00:00:00%2B14:00").status_code == 200


def test_a_bank_with_the_longest_allowed_name_is_created_and_audited(admin):
    name = "b" * 100
    r = admin.post("/api/v1/hash-banks/", {"name": name, "kind": "block"}, format="json")
    assert r.status_code == 201, r.content
    ev = AuditEvent.objects.get(verb="bank.created")
    assert ev.target_id == name and HashBank.objects.filter(name=name).exists()


def test_look_alike_search_with_a_json_array_body_is_a_400(admin):
    r = admin.post("/api/v1/search/similar/", [None, None], format="json")
    assert r.status_code == 400 and r.json()["error"]["detail"] == {"body": ["expected an object, got list"]}


def test_a_bank_import_of_binary_bytes_reports_malformed_rows(admin):
    bank = admin.post("/api/v1/hash-banks/", {"name": "imports", "kind": "block"}, format="json").json()
    f = io.BytesIO(PNG_1PX)
    f.name = "file.png"
    r = admin.post(f"/api/v1/hash-banks/{bank['id']}/import/", {"file": f, "csv": ""}, format="multipart")
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["added"] == 0 and body["errors"] and all("64 hex digits" in e for e in body["errors"])


def test_every_error_response_in_the_schema_is_the_error_envelope(admin):
    doc = admin.get("/api/schema/", {"format": "json"}).json()
    error = doc["components"]["schemas"]["Error"]
    assert "error" in error["properties"] and error["required"] == ["error"]
    missing = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            codes = op["responses"]
            for code in ("401", "403", "429") + (("404",) if "{" in path else ()):
                if code not in codes:
                    missing.append(f"{method.upper()} {path} {code}")
            for code, resp in codes.items():
                if code[0] in "45" and resp.get("content", {}).get("application/json", {}).get("schema") != {
                        "$ref": "#/components/schemas/Error"}:
                    missing.append(f"{method.upper()} {path} {code} without the envelope")
    assert missing == []


@pytest.mark.parametrize("path", ["/api/v1/assets/not-a-uuid/", "/api/v1/assets/not-a-uuid/insights/",
                                  "/api/v1/review-items/12/x/y/", "/api/v1/nothing-here/"])
def test_a_path_no_api_route_matches_is_a_json_404_in_the_envelope(admin, path):
    r = admin.get(path)
    assert r.status_code == 404 and r["Content-Type"] == "application/json"
    assert r.json()["error"]["code"] == "not_found" and r.json()["error"]["message"]


def test_console_paths_keep_the_html_404(admin):
    from django.test import Client

    r = Client().get("/console/nothing-here/")
    assert r.status_code == 404 and r["Content-Type"].startswith("text/html")
