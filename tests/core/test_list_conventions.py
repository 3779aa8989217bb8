"""Every list in the API follows one set of conventions, checked by walking the generated OpenAPI document.

A list operation is a ``GET`` whose 200 response is a page (``Paginated…``) or a JSON array. Each
documents ``ordering`` (an explicit allow-list) and, when paged, ``limit`` (with the maximum the
server enforces) and ``offset``; each refuses a ``limit`` over the maximum and an unknown ordering
field with ``400 invalid`` in the error envelope, and accepts every ordering value it documents.
Rows that tie on the requested field keep one order from page to page (the id breaks ties).
"""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings

from apps.core.ordering import with_tie_breaker
from tests.moderation.helpers import api, make_asset, make_user

pytestmark = pytest.mark.django_db

UNPAGED = {"/api/v1/categories/", "/api/v1/policies/"}  # small configuration collections: plain arrays


@pytest.fixture
def admin() -> Any:
    return api(make_user("ada", "admin"))


@pytest.fixture
def schema(admin: Any) -> dict[str, Any]:
    r = admin.get("/api/schema/", {"format": "json"})
    assert r.status_code == 200
    return r.json()


def _ok_schema(op: dict[str, Any]) -> dict[str, Any]:
    return op.get("responses", {}).get("200", {}).get("content", {}).get("application/json", {}).get("schema", {})


def list_operations(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Path → GET operation, for every operation whose 200 answer is a page or an array."""
    found = {}
    for path, item in doc["paths"].items():
        op = item.get("get")
        if op is None:
            continue
        body = _ok_schema(op)
        if body.get("$ref", "").startswith("#/components/schemas/Paginated") or body.get("type") == "array":
            found[path] = op
    return found


def paged(doc: dict[str, Any]) -> list[str]:
    return sorted(p for p, op in list_operations(doc).items() if "$ref" in _ok_schema(op))


def params(op: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in op.get("parameters", []) if p.get("in") == "query"}


def concrete(path: str, asset_id: str) -> str:
    return path.replace("{asset_id}", asset_id)


def test_the_walk_finds_every_list_of_the_api(schema):
    found = set(list_operations(schema))
    for path in ("/api/v1/assets/", "/api/v1/jobs/", "/api/v1/dead-letters/", "/api/v1/review-items/",
                 "/api/v1/decisions/", "/api/v1/appeals/", "/api/v1/hash-banks/", "/api/v1/hash-bank-entries/",
                 "/api/v1/webhooks/", "/api/v1/webhook-deliveries/", "/api/v1/audit/",
                 "/api/v1/assets/{asset_id}/audit/", *UNPAGED):
        assert path in found, sorted(found)


def test_every_list_documents_an_ordering_allow_list(schema):
    for path, op in list_operations(schema).items():
        if path == "/api/v1/policies/{name}/versions/":
            continue  # one policy's versions, newest first (a detail action, not a collection)
        ordering = params(op).get("ordering")
        assert ordering is not None, path
        assert ordering["schema"]["type"] == "array" and ordering["explode"] is False, path
        allowed = ordering["schema"]["items"]["enum"]
        assert allowed and all(f"-{v}" in allowed for v in allowed if not v.startswith("-")), path
        assert "Default:" in ordering["description"], path


def test_every_paged_list_documents_limit_with_the_enforced_maximum_and_offset(schema):
    assert set(list_operations(schema)) - set(paged(schema)) <= UNPAGED | {"/api/v1/policies/{name}/versions/"}
    for path in paged(schema):
        p = params(schema["paths"][path]["get"])
        assert p["limit"]["schema"]["maximum"] == settings.MEDIAINTEL_API_MAX_LIMIT, path
        assert p["limit"]["schema"]["minimum"] == 1, path
        assert p["offset"]["schema"]["minimum"] == 0, path


@pytest.mark.parametrize("limit", ["MAX+1", "0", "-1", "ten"])
def test_a_limit_outside_the_allowed_range_is_refused_on_every_list_when_requested(admin, schema, limit):
    asset = make_asset(make_user("ulla", "uploader"))
    value = str(settings.MEDIAINTEL_API_MAX_LIMIT + 1) if limit == "MAX+1" else limit
    for path in paged(schema):
        r = admin.get(concrete(path, str(asset.pk)), {"limit": value})
        assert r.status_code == 400, (path, r.content)
        err = r.json()["error"]
        assert err["code"] == "invalid" and "limit" in err["detail"], (path, err)


def test_a_negative_offset_is_refused_on_every_list(admin, schema):
    asset = make_asset(make_user("ulla", "uploader"))
    for path in paged(schema):
        r = admin.get(concrete(path, str(asset.pk)), {"offset": "-3"})
        assert r.status_code == 400 and "offset" in r.json()["error"]["detail"], (path, r.content)


def test_the_maximum_limit_itself_is_accepted(admin, schema):
    asset = make_asset(make_user("ulla", "uploader"))
    for path in paged(schema):
        r = admin.get(concrete(path, str(asset.pk)), {"limit": settings.MEDIAINTEL_API_MAX_LIMIT})
        assert r.status_code == 200, (path, r.content)


def test_an_unknown_ordering_field_is_refused_on_every_list(admin, schema):
    asset = make_asset(make_user("ulla", "uploader"))
    for path in list_operations(schema):
        if "ordering" not in params(schema["paths"][path]["get"]):
            continue
        for bad in ("password", "-nosuch", "created_at,uploader__password"):
            r = admin.get(concrete(path, str(asset.pk)), {"ordering": bad})
            assert r.status_code == 400, (path, bad, r.content)
            err = r.json()["error"]
            assert err["code"] == "invalid" and "ordering" in err["detail"], (path, err)


def test_every_documented_ordering_value_is_accepted(admin, schema):
    asset = make_asset(make_user("ulla", "uploader"))
    for path, op in list_operations(schema).items():
        ordering = params(op).get("ordering")
        if ordering is None:
            continue
        allowed = ordering["schema"]["items"]["enum"]
        for value in allowed:
            r = admin.get(concrete(path, str(asset.pk)), {"ordering": value})
            assert r.status_code == 200, (path, value, r.content)
        r = admin.get(concrete(path, str(asset.pk)), {"ordering": ",".join(allowed[:3])})
        assert r.status_code == 200, (path, r.content)


def test_assets_are_ordered_by_the_requested_field_when_asked(admin):
    owner = make_user("ulla", "uploader")
    for title in ("b", "c", "a"):
        make_asset(owner, title=title)
    titles = [a["title"] for a in admin.get("/api/v1/assets/", {"ordering": "title"}).json()["results"]]
    assert titles == ["a", "b", "c"]
    titles = [a["title"] for a in admin.get("/api/v1/assets/", {"ordering": "-title"}).json()["results"]]
    assert titles == ["c", "b", "a"]


def test_an_empty_ordering_gives_the_default_order(admin):
    owner = make_user("ulla", "uploader")
    ids = [str(make_asset(owner, title=t).pk) for t in ("b", "c", "a")]
    for value in ("", ",", " , "):
        got = [a["id"] for a in admin.get("/api/v1/assets/", {"ordering": value}).json()["results"]]
        assert got == ids[::-1], value  # newest first


def test_rows_that_tie_keep_one_order_across_pages_when_paging(admin):
    owner = make_user("ulla", "uploader")
    ids = sorted(str(make_asset(owner, kind="text").pk) for _ in range(7))
    seen = []
    for offset in range(0, 7, 2):
        page = admin.get("/api/v1/assets/", {"ordering": "kind", "limit": 2, "offset": offset}).json()
        seen += [a["id"] for a in page["results"]]
    assert seen == ids  # every asset exactly once, ties broken by id


def test_the_tie_breaker_follows_the_direction_of_the_first_key():
    assert with_tie_breaker(["-created_at"]) == ["-created_at", "-pk"]
    assert with_tie_breaker(["kind", "-size"]) == ["kind", "-size", "pk"]
    assert with_tie_breaker(["-id"]) == ["-id"]


def test_the_dead_letter_open_filter_is_documented(schema):
    p = params(schema["paths"]["/api/v1/dead-letters/"]["get"])
    assert {"open", "stage", "asset", "discarded"} <= set(p)


def test_assets_are_filtered_by_the_uploaders_username_when_asked(admin):
    ulla, vic = make_user("ulla", "uploader"), make_user("vic", "uploader")
    mine = make_asset(ulla)
    make_asset(vic)
    body = admin.get("/api/v1/assets/", {"uploader": "ulla"}).json()
    assert [a["id"] for a in body["results"]] == [str(mine.pk)]


def test_dead_letters_are_filtered_by_open_stage_and_asset_when_asked(admin):
    from django.utils import timezone

    from apps.pipeline.models import DeadLetter, Job, StageRun

    def dead(stage: str, **kw: Any) -> DeadLetter:
        asset = make_asset(title=stage)
        job = Job.objects.create(asset=asset, plan_version="t", status="failed", finished_at=timezone.now())
        run = StageRun.objects.create(job=job, asset=asset, stage=stage, key=f"{asset.pk}:{stage}", engine="e",
                                      engine_version="1", status="dead", queue="cpu")
        return DeadLetter.objects.create(stage_run=run, task_name=f"mediaintel.stage.{stage}", args=[run.pk],
                                         error_class="RuntimeError", error="boom", **kw)

    a, b, c = dead("ocr"), dead("language"), dead("ocr", discarded=True)

    def ids(**q: Any) -> set[int]:
        r = admin.get("/api/v1/dead-letters/", q)
        assert r.status_code == 200, r.content
        return {d["id"] for d in r.json()["results"]}

    assert ids(open="true") == {a.pk, b.pk}
    assert ids(open="false") == {c.pk}
    assert ids(stage="ocr") == {a.pk, c.pk}
    assert ids(asset=str(b.stage_run.asset_id)) == {b.pk}
    assert admin.get("/api/v1/dead-letters/", {"asset": "not-a-uuid"}).status_code == 400
