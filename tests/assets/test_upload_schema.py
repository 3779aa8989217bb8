"""The upload form's schema states what the server takes: ``metadata`` is a JSON object (sent as
its JSON text in a form part); any other JSON value is refused naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from tests.moderation.helpers import api, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def uploader() -> Any:
    return api(make_user("uma", "uploader"))


def _form(doc: dict[str, Any]) -> dict[str, Any]:
    ref = doc["paths"]["/api/v1/assets/"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"]
    return doc["components"]["schemas"][ref.rsplit("/", 1)[1]]


def test_the_upload_forms_metadata_is_documented_as_an_object(uploader: Any) -> None:
    form = _form(uploader.get("/api/schema/", {"format": "json"}).json())
    assert form["properties"]["metadata"]["type"] == "object"


@pytest.mark.parametrize("text", ["null", "[1]", "3", "\"x\"", "{"])
def test_metadata_that_is_not_a_json_object_is_refused(uploader: Any, text: str) -> None:
    r = uploader.post("/api/v1/assets/", {"file": ("a.txt", b"hello there"), "metadata": text}, format="multipart")
    assert r.status_code == 400, r.content
    assert "metadata" in r.json()["error"]["detail"]
