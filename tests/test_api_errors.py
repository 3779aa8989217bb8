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
                                 "/api/v1/assets/?created_after=6619-06-27T02:32:26.03-16:28",
                                 "/api/v1/assets/?created_before=0001-01-01T00:00:00%2B01:00",
                                 "/api/v1/audit/?since=2026-01-01T00:00:00-23:59"])
def test_a_timestamp_filter_with_any_rfc3339_offset_filters_in_utc(admin, url):
    """Any offset RFC 3339 allows (up to ±23:59) is compared in UTC; PostgreSQL never sees the offset."""
    r = admin.get(url)
    assert r.status_code == 200, r.content


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


@pytest.mark.parametrize("query", ["offset=null", "offset=-1", "limit=-307", "limit=0", "limit=ten", "offset=1.5"])
def test_a_page_parameter_that_is_not_an_integer_in_range_is_a_400_naming_it(admin, query):
    r = admin.get(f"/api/v1/jobs/?{query}")
    assert r.status_code == 400, r.content
    assert set(r.json()["error"]["detail"]) == {query.split("=")[0]}


def test_a_limit_above_the_maximum_is_refused_naming_the_range(admin):
    r = admin.get("/api/v1/jobs/?limit=1000000&offset=0")
    assert r.status_code == 400, r.content
    assert set(r.json()["error"]["detail"]) == {"limit"}


def test_a_page_parameter_given_twice_is_a_400_naming_it(admin):
    r = admin.get("/api/v1/jobs/?limit=5&limit=6")
    assert r.status_code == 400, r.content
    assert set(r.json()["error"]["detail"]) == {"limit"}


def test_the_page_parameters_document_their_bounds(admin):
    doc = admin.get("/api/schema/", {"format": "json"}).json()
    params = {p["name"]: p["schema"] for p in doc["paths"]["/api/v1/jobs/"]["get"]["parameters"]}
    assert params["limit"]["minimum"] == 1 and params["offset"]["minimum"] == 0


@pytest.mark.parametrize("url", ["/api/v1/jobs/?asset=e3e70682-c209-1cac-a29f-6fbed82c07cd",
                                 "/api/v1/review-items/?asset=e3e70682-c209-1cac-a29f-6fbed82c07cd",
                                 "/api/v1/decisions/?asset=e3e70682-c209-1cac-a29f-6fbed82c07cd",
                                 "/api/v1/appeals/?decision=e3e70682-c209-1cac-a29f-6fbed82c07cd",
                                 "/api/v1/hash-bank-entries/?bank=0",
                                 "/api/v1/webhook-deliveries/?subscription=999999"])
def test_filtering_by_a_well_formed_id_that_names_nothing_is_an_empty_page(admin, url):
    r = admin.get(url)
    assert r.status_code == 200, r.content
    assert r.json()["count"] == 0


def test_filtering_by_a_malformed_id_is_a_400_naming_the_filter(admin):
    r = admin.get("/api/v1/jobs/?asset=not-a-uuid")
    assert r.status_code == 400 and "asset" in r.json()["error"]["detail"]


def test_search_by_an_uploader_no_one_has_finds_nothing(admin):
    r = admin.get("/api/v1/search/", {"q": "x", "uploader": "nobody-by-that-name", "mode": "text"})
    assert r.status_code == 200, r.content
    assert r.json()["results"] == []


@pytest.mark.parametrize("path,body", [("/api/v1/hash-banks/", {"name": "twice", "kind": "block"}),
                                       ("/api/v1/categories/", {"code": "twice", "name": "Twice"})])
def test_creating_a_second_object_under_a_taken_name_is_a_409_conflict(admin, path, body):
    assert admin.post(path, body, format="json").status_code == 201
    r = admin.post(path, body, format="json")
    assert r.status_code == 409, r.content
    assert r.json()["error"]["code"] == "conflict" and r.json()["error"]["detail"]


@pytest.mark.parametrize("value", [0, 1, "true", None])
def test_a_json_boolean_field_takes_only_true_or_false(admin, value):
    r = admin.post("/api/v1/hash-banks/", {"name": "strict", "kind": "block", "enabled": value}, format="json")
    assert r.status_code == 400, r.content
    assert "enabled" in r.json()["error"]["detail"]


def test_a_form_boolean_field_still_takes_its_text_spellings(admin):
    r = admin.post("/api/v1/hash-banks/", {"name": "form", "kind": "block", "enabled": "false"})
    assert r.status_code == 201, r.content
    assert r.json()["enabled"] is False


def test_a_policy_export_of_a_version_that_does_not_exist_is_a_404(admin):
    assert admin.get("/api/v1/policies/default/export/?version=-4318").status_code == 404
    assert admin.get("/api/v1/policies/default/export/?version=x").status_code == 400


def admits_null(prop: dict) -> bool:
    """OpenAPI 3.1: null is one of the property's types (or of its ``oneOf``/``anyOf`` branches)."""
    types = prop.get("type")
    return ("null" in types if isinstance(types, list) else types == "null") or any(
        admits_null(b) for b in prop.get("oneOf", []) + prop.get("anyOf", []))


def test_the_schema_admits_what_the_api_answers_for_unset_fields(admin):
    doc = admin.get("/api/schema/", {"format": "json"}).json()
    schemas = doc["components"]["schemas"]
    assert doc["openapi"].startswith("3.1")
    assert admits_null(schemas["PolicyVersion"]["properties"]["created_by"])
    kind = schemas["WebhookDelivery"]["properties"]["last_error_kind"]
    refs = [k.get("$ref", "").rsplit("/", 1)[-1] for k in kind.get("oneOf", kind.get("allOf", [kind]))]
    assert any("" in schemas.get(r, {}).get("enum", []) for r in refs if r), kind


@pytest.mark.parametrize("component,prop", [("MediaAsset", "uploader"), ("ReviewItem", "claimed_by"),
                                            ("Decision", "moderator"), ("Appeal", "decided_by"),
                                            ("HashBankEntry", "added_by")])
def test_a_user_reference_that_can_be_unset_is_nullable_in_the_schema(admin, component, prop):
    schemas = admin.get("/api/schema/", {"format": "json"}).json()["components"]["schemas"]
    name = next(n for n in schemas if n == component or n == component.removeprefix("Media"))
    assert admits_null(schemas[name]["properties"][prop]), schemas[name]["properties"][prop]


@pytest.mark.parametrize("url", ["/api/v1/jobs/?asset=", "/api/v1/assets/?created_before=", "/api/v1/audit/?until=",
                                 "/api/v1/webhook-deliveries/?event_id=", "/api/v1/hash-banks/?enabled=null",
                                 "/api/v1/dead-letters/?discarded=maybe", "/api/v1/jobs/?status="])
def test_a_typed_filter_given_an_empty_or_malformed_value_is_a_400_naming_it(admin, url):
    r = admin.get(url)
    assert r.status_code == 400, r.content
    assert url.split("?")[1].split("=")[0] in r.json()["error"]["detail"]


@pytest.mark.parametrize("url", ["/api/v1/hash-banks/?enabled=true", "/api/v1/hash-banks/?enabled=False",
                                 "/api/v1/review-items/?category="])
def test_a_boolean_filter_takes_true_or_false_and_a_text_filter_may_be_empty(admin, url):
    assert admin.get(url).status_code == 200


def test_search_takes_a_boolean_in_the_query_string(admin):
    r = admin.get("/api/v1/search/", {"q": "x", "has_speech": "true", "mode": "text"})
    assert r.status_code == 200, r.content


def test_an_appeal_of_a_decision_that_does_not_exist_documents_its_404(admin):
    doc = admin.get("/api/schema/", {"format": "json"}).json()
    assert "404" in doc["paths"]["/api/v1/appeals/"]["post"]["responses"]


def test_the_reprocess_body_names_only_real_stages_and_its_answer_is_typed(admin):
    doc = admin.get("/api/schema/", {"format": "json"}).json()
    op = doc["paths"]["/api/v1/assets/{id}/reprocess/"]["post"]
    body = op["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    items = doc["components"]["schemas"][body]["properties"]["stages"]["items"]
    enum = doc["components"]["schemas"][items["$ref"].rsplit("/", 1)[-1]]["enum"] if "$ref" in items else items["enum"]
    assert {"transcribe", "language", "ocr"} <= set(enum)
    for code in ("200", "202"):
        assert "schema" in op["responses"][code]["content"]["application/json"], code
    assert "409" in op["responses"]


def test_a_bank_entry_hash_and_a_territory_list_document_their_form(admin):
    doc = admin.get("/api/schema/", {"format": "json"}).json()
    entry = doc["components"]["schemas"]["HashBankEntryCreateRequest"]["properties"]["hash_hex"]
    assert entry["pattern"] == "^(0[xX])?[0-9a-fA-F]{64}$"
    params = doc["paths"]["/api/v1/decisions/statements-of-reasons/"]["get"]["parameters"]
    territory = next(p for p in params if p["name"] == "territory")
    assert territory["schema"]["type"] == "array" and "DE" in territory["schema"]["items"]["enum"]
    assert territory["explode"] is False


def test_every_insight_kind_has_a_typed_schema_matching_what_the_api_answers(admin):
    from apps.insights import models as im
    from tests.moderation.helpers import make_asset

    asset = make_asset(kind="video")
    common = {"asset": asset, "stage": "s", "engine": "e", "engine_version": "1", "start": 0.0, "end": 1.0}
    im.Scene.objects.create(**common, index=0, start_frame=0, end_frame=24)
    im.Keyframe.objects.create(**common, index=0, frame_index=0, scene_index=0, time=0.5, width=4, height=3,
                               storage_key="k", thumbnail=b"")
    im.TranscriptSegment.objects.create(**common, index=0, text="hello", language="en", confidence=0.9)
    im.OcrText.objects.create(**common, text="EXIT", confidence=0.8, keyframe_index=0, boxes=[])
    im.Detection.objects.create(**common, detector="objects", label="dog", canonical="dog", confidence=0.9,
                                keyframe_index=0, box=[0, 0, 1, 1])
    im.Tag.objects.create(**common, label="beagle", canonical="dog", score=0.7, keyframe_index=0)
    im.NsfwScore.objects.create(**common, score=0.01, keyframe_index=0)
    im.TextSpanFlag.objects.create(**common, source="transcript", category="spam/links", score=0.6, char_start=0,
                                   char_end=5, matched="hello", ref_id=None)
    im.Language.objects.create(**common, source="transcript", language="en", score=0.99)
    im.PerceptualHash.objects.create(**common, hash="0" * 256, quality=90, keyframe_index=0)
    im.FaceFrame.objects.create(**common, keyframe_index=0, count=0, boxes=[])
    body = admin.get(f"/api/v1/assets/{asset.pk}/insights/").json()
    doc = admin.get("/api/schema/", {"format": "json"}).json()
    schemas = doc["components"]["schemas"]
    ok = doc["paths"]["/api/v1/assets/{id}/insights/"]["get"]["responses"]["200"]["content"]["application/json"]
    top = schemas[ok["schema"]["$ref"].rsplit("/", 1)[-1]]
    assert set(top["properties"]) == set(body)
    for kind, rows in body.items():
        assert rows, f"no {kind} row in the fixture"
        item = schemas[top["properties"][kind]["items"]["$ref"].rsplit("/", 1)[-1]]
        assert set(item["properties"]) == set(rows[0]), kind
        assert set(item["required"]) == set(rows[0]), kind


def test_a_replay_answers_the_dead_letter_with_replayed_and_documents_its_409(admin):
    doc = admin.get("/api/schema/", {"format": "json"}).json()
    op = doc["paths"]["/api/v1/dead-letters/{id}/replay/"]["post"]
    ok = doc["components"]["schemas"][op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
                                      .rsplit("/", 1)[-1]]
    assert "replayed" in ok["properties"] and "stage" in ok["properties"]
    assert op["responses"]["409"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}


@pytest.mark.parametrize("body", ['"AAA"', "[]", '{"file": ""}'])
def test_a_bank_import_json_body_that_is_not_an_object_with_csv_text_is_a_400(admin, body):
    bank = admin.post("/api/v1/hash-banks/", {"name": "json-imports", "kind": "block"}, format="json").json()
    r = admin.post(f"/api/v1/hash-banks/{bank['id']}/import/", body, content_type="application/json")
    assert r.status_code == 400, r.content


def test_a_bank_import_takes_csv_text_in_json(admin):
    bank = admin.post("/api/v1/hash-banks/", {"name": "json-csv", "kind": "block"}, format="json").json()
    r = admin.post(f"/api/v1/hash-banks/{bank['id']}/import/", {"csv": f"{'ab' * 32},90,x\n"}, format="json")
    assert r.status_code == 200 and r.json()["added"] == 1, r.content


def test_a_json_string_field_given_a_number_is_a_400(admin):
    r = admin.post("/api/v1/hash-banks/", {"name": 0, "kind": "block"}, format="json")
    assert r.status_code == 400 and "name" in r.json()["error"]["detail"], r.content
    bank = admin.post("/api/v1/hash-banks/", {"name": "labels", "kind": "block"}, format="json").json()
    r = admin.post(f"/api/v1/hash-banks/{bank['id']}/entries/", {"hash_hex": "ab" * 32, "label": 0}, format="json")
    assert r.status_code == 400 and "label" in r.json()["error"]["detail"], r.content
    r = admin.post("/api/v1/search/similar/", {"asset_id": "e3e70682-c209-1cac-a29f-6fbed82c07cd", "uploader": 0},
                   format="json")
    assert r.status_code == 400 and "uploader" in r.json()["error"]["detail"], r.content


def test_a_form_or_query_string_leaves_a_nullable_boolean_unset_with_an_empty_value(admin):
    r = admin.get("/api/v1/search/", {"q": "x", "has_speech": "", "mode": "text"})
    assert r.status_code == 200, r.content


def test_the_review_mine_filter_is_a_boolean_in_the_schema(admin):
    doc = admin.get("/api/schema/", {"format": "json"}).json()
    params = {p["name"]: p for p in doc["paths"]["/api/v1/review-items/"]["get"]["parameters"]}
    print(params["mine"])
    assert params["mine"]["schema"]["type"] == "boolean"


def test_search_filters_document_what_they_take(admin):
    doc = admin.get("/api/schema/", {"format": "json"}).json()
    params = {p["name"]: p["schema"] for p in doc["paths"]["/api/v1/search/"]["get"]["parameters"]}
    assert {"format": "date-time", "type": "string"} in params["created_after"]["anyOf"]
    listed = params["source"]["oneOf"][0]  # or blank
    assert listed["pattern"].startswith("^(") and "transcript" in listed["pattern"]
    r = admin.get("/api/v1/search/", {"q": "x", "mode": "text", "created_after": "2026-01-01T00:00:00-16:28",
                                      "source": "transcript,ocr"})
    assert r.status_code == 200, r.content


def test_an_integer_filter_refuses_a_decimal_and_takes_a_whole_number(admin):
    assert admin.get("/api/v1/categories/?severity=0.5").status_code == 400
    r = admin.get("/api/v1/categories/?severity=5")
    assert r.status_code == 200 and r.json() and {c["severity"] for c in r.json()} == {5}


def test_a_look_alike_form_refuses_null_for_has_speech_since_a_form_has_no_null(admin):
    """The form's ``has_speech`` is a plain boolean in the schema: ``null`` is a wrong value, and
    leaving the field out means either (it was read as null, and DRF reads a missing one as false)."""
    doc = admin.get("/api/schema/", {"format": "json"}).json()
    assert doc["components"]["schemas"]["SimilarUploadRequest"]["properties"]["has_speech"]["type"] == "boolean"
    f = io.BytesIO(PNG_1PX)
    f.name = "q.png"
    r = admin.post("/api/v1/search/similar/", {"file": f, "has_speech": "null"}, format="multipart")
    assert r.status_code == 400 and "has_speech" in r.json()["error"]["detail"], r.content
    from apps.search.serializers import SimilarFormQuerySerializer

    asset = "e3e70682-c209-1cac-a29f-6fbed82c07cd"
    form = SimilarFormQuerySerializer(data=_multipart({"asset_id": asset}))
    assert form.is_valid(), form.errors
    assert "has_speech" not in form.validated_data
    form = SimilarFormQuerySerializer(data=_multipart({"asset_id": asset, "has_speech": "TRUE"}))
    assert form.is_valid(), form.errors
    assert form.validated_data["has_speech"] is True


def _multipart(fields: dict[str, str]) -> object:
    from django.http import QueryDict

    q = QueryDict(mutable=True)
    q.update(fields)
    return q


def test_every_upload_part_names_the_media_types_the_server_takes(admin):
    """OpenAPI ``encoding.contentType`` of each file part: what a client (or a fuzzer) must send."""
    from apps.assets.sniff import ALLOWED

    paths = admin.get("/api/schema/", {"format": "json"}).json()["paths"]

    def part(path: str) -> str:
        return paths[path]["post"]["requestBody"]["content"]["multipart/form-data"]["encoding"]["file"]["contentType"]

    assert set(part("/api/v1/assets/").split(", ")) == {mime for _, mime, _ in ALLOWED.values()}
    assert part("/api/v1/search/similar/") == "image/*"
    assert part("/api/v1/hash-banks/{id}/import/") == "text/csv"


def test_a_policy_version_takes_json_only_and_its_rules_are_typed(admin):
    doc = admin.get("/api/schema/", {"format": "json"}).json()
    body = doc["paths"]["/api/v1/policies/{name}/versions/"]["post"]["requestBody"]["content"]
    assert list(body) == ["application/json"]
    rules = doc["components"]["schemas"]["PolicyVersionCreateRequest"]["properties"]["rules"]
    rule = rules["properties"]["categories"]["additionalProperties"]
    assert rule["required"] == ["review", "block"] and rule["properties"]["block"]["maximum"] == 1.01
    r = admin.post("/api/v1/policies/default/versions/", {"rules": '{"categories": {}}'}, format="multipart")
    assert r.status_code == 415, r.content


@pytest.mark.parametrize("rules, problem", [
    ({"categories": {"profanity": {"review": True, "block": 0.9}}}, "review must be a number"),
    ({"categories": {"profanity": {"review": 0.2, "block": 0.9, "weights": {"text": False}}}}, "weights"),
    ({"categories": {"profanity": {"review": 0.2, "block": 0.9}}, "bank_on_reject": 7}, "bank_on_reject"),
])
def test_policy_rules_the_schema_calls_wrong_are_a_400(admin, rules, problem):
    r = admin.post("/api/v1/policies/default/versions/", {"rules": rules}, format="json")
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_policy", r.content
    assert problem in r.json()["error"]["message"]


@pytest.mark.parametrize("field, value", [("metadata", '{"note": "a\\u0000b"}'), ("metadata", '{"a\\u0000": 1}'),
                                          ("title", "a\x00b")])
def test_text_with_nul_in_an_upload_is_a_400_naming_the_field_and_stores_nothing(admin, field, value):
    """PostgreSQL cannot store U+0000 (it was a 500 on the upload's metadata)."""
    from apps.assets.models import MediaAsset

    f = io.BytesIO(PNG_1PX)
    f.name = "nul.png"
    r = admin.post("/api/v1/assets/", {"file": f, field: value}, format="multipart")
    assert r.status_code == 400 and field in r.json()["error"]["detail"], r.content
    assert not MediaAsset.objects.exists()


def test_policy_rules_with_nul_are_a_400(admin):
    rules = {"categories": {"profanity": {"review": 0.2, "block": 0.9, "weights": {"te\x00xt": 1}}}}
    r = admin.post("/api/v1/policies/default/versions/", {"rules": rules}, format="json")
    assert r.status_code == 400 and "rules" in r.json()["error"]["detail"], r.content


def test_a_bank_import_of_an_empty_file_imports_nothing(admin):
    bank = admin.post("/api/v1/hash-banks/", {"name": "empty", "kind": "block"}, format="json").json()
    f = io.BytesIO(b"")
    f.name = "empty.csv"
    r = admin.post(f"/api/v1/hash-banks/{bank['id']}/import/", {"file": f}, format="multipart")
    assert r.status_code == 200 and r.json() == {"added": 0, "existing": 0, "errors": []}, r.content


def test_a_policy_import_without_a_body_is_a_400_and_the_schema_requires_one(admin):
    doc = admin.get("/api/schema/", {"format": "json"}).json()
    assert doc["paths"]["/api/v1/policies/import/"]["post"]["requestBody"]["required"] is True
    r = admin.post("/api/v1/policies/import/")
    assert r.status_code == 400 and "yaml" in r.json()["error"]["detail"], r.content


def test_a_bank_import_row_whose_label_holds_nul_is_listed_as_malformed(admin):
    """It was a 500 (PostgreSQL cannot store U+0000); the other rows still import."""
    bank = admin.post("/api/v1/hash-banks/", {"name": "nul-labels", "kind": "block"}, format="json").json()
    body = f"{'ab' * 32},90,bad\x00label\n{'cd' * 32},90,good\n"
    r = admin.post(f"/api/v1/hash-banks/{bank['id']}/import/", body, content_type="text/csv")
    assert r.status_code == 200, r.content
    assert r.json()["added"] == 1 and r.json()["errors"] == ["line 1: the label contains a NUL (U+0000) character"]


def test_a_policy_document_whose_yaml_escapes_spell_nul_is_a_400(admin):
    """YAML's ``"\\0"`` is a NUL character (PyYAML refuses a raw one, not the escape)."""
    doc = 'note: "a\\0b"\nrules:\n  categories:\n    profanity: {review: 0.5, block: 0.9}\n'
    r = admin.post("/api/v1/policies/import/", doc, content_type="application/yaml")
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_policy", r.content
    doc = 'rules:\n  categories:\n    profanity: {review: 0.5, block: 0.9, weights: {"te\\0xt": 1}}\n'
    r = admin.post("/api/v1/policies/import/", doc, content_type="application/yaml")
    assert r.status_code == 400 and "NUL" in r.json()["error"]["message"], r.content


def test_a_query_image_is_judged_by_its_bytes_not_its_file_name():
    """Django's image field also wanted an image extension: a PNG named ``query`` was a 400."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from apps.search.serializers import SimilarFormQuerySerializer

    form = SimilarFormQuerySerializer(data={"file": SimpleUploadedFile("query", PNG_1PX)})
    assert form.is_valid(), form.errors
    form = SimilarFormQuerySerializer(data={"file": SimpleUploadedFile("q.png", b"not an image")})
    assert not form.is_valid() and "file" in form.errors


def test_the_raw_upload_metadata_parameter_is_documented_as_a_json_object_text(admin):
    doc = admin.get("/api/schema/", {"format": "json"}).json()
    params = {p["name"]: p["schema"] for p in doc["paths"]["/api/v1/assets/"]["post"]["parameters"]}
    assert params["metadata"]["contentMediaType"] == "application/json"
    assert params["metadata"]["contentSchema"] == {"type": "object"}


def test_an_upload_body_is_required_in_the_schema_and_its_absence_is_a_400(admin):
    doc = admin.get("/api/schema/", {"format": "json"}).json()
    assert doc["paths"]["/api/v1/assets/"]["post"]["requestBody"]["required"] is True
    r = admin.post("/api/v1/assets/")
    assert r.status_code == 400 and "file" in r.json()["error"]["detail"], r.content
