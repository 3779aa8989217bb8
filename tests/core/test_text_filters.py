"""A text filter takes any text the schema allows, NUL included: no stored text can contain NUL
(PostgreSQL refuses it), so such a value matches nothing — an empty page, not a 400."""

from __future__ import annotations

from typing import Any

import pytest

from tests.moderation.helpers import api, make_asset, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin() -> Any:
    return api(make_user("ada", "admin"))


@pytest.mark.parametrize("path, name", [
    ("/api/v1/jobs/", "reason"),
    ("/api/v1/assets/", "q"),
    ("/api/v1/assets/", "uploader"),
    ("/api/v1/review-items/", "category"),
    ("/api/v1/audit/", "verb_prefix"),
    ("/api/v1/dead-letters/", "stage"),
])
def test_a_text_filter_with_a_nul_character_matches_nothing(admin: Any, path: str, name: str) -> None:
    make_asset(make_user("uma", "uploader"), title="a\u00e9b")
    r = admin.get(path, {name: "a\x00b"})
    assert r.status_code == 200, r.content
    assert r.json()["count"] == 0


def test_a_text_filter_without_nul_still_filters(admin: Any) -> None:
    make_asset(make_user("uma", "uploader"), title="harbour boats")
    assert admin.get("/api/v1/assets/", {"q": "harbour"}).json()["count"] == 1
    assert admin.get("/api/v1/assets/", {"q": "lake"}).json()["count"] == 0
