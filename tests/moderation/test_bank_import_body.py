"""`POST /hash-banks/{id}/import/` takes the CSV one way at a time, and its schema says so: a
multipart form with `file`, `csv` or both (``anyOf``; both: the file's rows, then the text's), a
JSON object whose `csv` is a JSON string, or a ``text/csv`` body (required). A form with neither,
or a JSON `csv` that is not a string, is a 400 naming the field."""

from __future__ import annotations

import io
from typing import Any

import pytest

from apps.moderation.models import HashBank, HashBankEntry
from tests.moderation.helpers import api, make_user

pytestmark = pytest.mark.django_db
H = "f" * 64


@pytest.fixture
def admin() -> Any:
    return api(make_user("ada", "admin"))


@pytest.fixture
def bank() -> HashBank:
    return HashBank.objects.create(name="known")


def _url(bank: HashBank) -> str:
    return f"/api/v1/hash-banks/{bank.pk}/import/"


@pytest.mark.parametrize("value", [0, None, ["a"], {"a": 1}, True])
def test_a_json_csv_that_is_not_a_string_is_refused(admin: Any, bank: HashBank, value: Any) -> None:
    r = admin.post(_url(bank), {"csv": value}, format="json")
    assert r.status_code == 400, r.content
    assert "csv" in r.json()["error"]["detail"]


def test_a_form_with_neither_is_refused(admin: Any, bank: HashBank) -> None:
    r = admin.post(_url(bank), {}, format="multipart")
    assert r.status_code == 400, r.content
    assert set(r.json()["error"]["detail"]) == {"file", "csv"}


def test_a_form_with_both_imports_the_files_rows_then_the_texts(admin: Any, bank: HashBank) -> None:
    up = io.BytesIO(f"{H},50,x\n".encode())
    up.name = "a.csv"
    r = admin.post(_url(bank), {"file": up, "csv": f"{'e' * 64},50,y\n{H},60,z\nbad\n"}, format="multipart")
    assert r.status_code == 200, r.content
    assert (r.json()["added"], r.json()["existing"], len(r.json()["errors"])) == (2, 1, 1)
    assert HashBankEntry.objects.filter(bank=bank).count() == 2


def test_a_form_with_either_one_imports(admin: Any, bank: HashBank) -> None:
    assert admin.post(_url(bank), {"csv": f"{H},50,y\n"}, format="multipart").json()["added"] == 1


def test_the_schema_says_the_form_takes_file_or_csv_and_the_body_is_required(admin: Any) -> None:
    doc = admin.get("/api/schema/", {"format": "json"}).json()
    request_body = doc["paths"]["/api/v1/hash-banks/{id}/import/"]["post"]["requestBody"]
    assert request_body["required"] is True  # no body, nothing to import: a 400
    body = request_body["content"]
    form = body["multipart/form-data"]["schema"]
    form = doc["components"]["schemas"][form["$ref"].rsplit("/", 1)[1]] if "$ref" in form else form
    assert sorted(tuple(alt["required"]) for alt in form["anyOf"]) == [("csv",), ("file",)]
    assert form["properties"]["file"]["format"] == "binary"


def test_empty_csv_text_is_an_empty_import(admin: Any, bank: HashBank) -> None:
    for r in (admin.post(_url(bank), b"", content_type="text/csv"),
              admin.post(_url(bank), {"csv": ""}, format="multipart")):
        assert r.status_code == 200, r.content
        assert r.json() == {"added": 0, "existing": 0, "errors": []}
