"""Search against the real database: full-text per language, hybrid ranking, filters that keep pages
full (pgvector iterative scans), snippets, permissions, degradation, the console page."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from apps.insights import knn
from apps.insights.models import Detection, ImageEmbedding, Keyframe, PerceptualHash, Tag, TranscriptSegment
from apps.search import fulltext, present, query, rank, remote, services
from apps.search.filters import Filters
from tests.search.conftest import client_for
from tests.search.helpers import add_chunks, embed, make_asset, stdlib_paragraphs

pytestmark = pytest.mark.django_db

FERRY = "The ferry to the island leaves every twenty minutes from the north pier."
DOCS = [
    "Our bakery sells fresh bread and croissants every morning before eight.",
    "The football match was postponed because of heavy rain in the stadium.",
    "Remember to water the tomato plants twice a week during the summer.",
    FERRY,
    "The museum closes at six on weekdays and at four on Sundays.",
]


def _shorten(p: str) -> str:
    first = p.split(". ")[0]
    return first[:200]


# --------------------------------------------------------------------------- full text


def test_ts_config_follows_the_language_and_exists_in_postgres():
    assert fulltext.config_for("en") == "english"
    assert fulltext.config_for("de-DE") == "german"
    assert fulltext.config_for("fr_CA") == "french"
    assert fulltext.config_for("") == "simple"
    assert fulltext.config_for("xx") == "simple"
    with connection.cursor() as cur:
        cur.execute("SELECT cfgname FROM pg_ts_config")
        available = {r[0] for r in cur.fetchall()}
    configs = set(fulltext.configs())
    assert configs <= available and {"english", "german", "spanish", "simple"} <= configs


def test_full_text_is_stemmed_in_the_chunks_language():
    en = make_asset("audio")
    add_chunks(en, [FERRY], language="en")
    de = make_asset("audio")
    add_chunks(de, ["Die Fähren zur Insel fahren alle zwanzig Minuten."], language="de")
    unknown = make_asset("audio")
    add_chunks(unknown, ["Ferries leaving the harbour are counted here."], language="")

    def found(q: str, **kw: Any) -> set[Any]:
        return {h.asset_id for h in query.text_chunks(q, Filters(**kw), 50)}

    # english stemming: "leaving ferries" matches "ferry … leaves"; the unknown-language chunk is
    # indexed with 'simple' (no stemming), so only its exact words match it
    assert found("leaving ferries") == {en.pk, unknown.pk}
    assert found("leave") == {en.pk}
    assert found("harbour") == {unknown.pk}
    # german stemming: "Fähre" (singular) finds "Fähren"
    assert found("Fähre") == {de.pk}
    assert found("Fähre", languages=("en",)) == set()
    # stored tsv really is stemmed per row
    with connection.cursor() as cur:
        cur.execute("SELECT tsv::text FROM insights_textchunk WHERE asset_id = %s", [en.pk])
        assert "'leav'" in cur.fetchone()[0]


def test_snippets_highlight_matched_words_and_escape_html():
    a = make_asset("text")
    chunks = add_chunks(a, ["<script>alert(1)</script> A ferry ticket costs < 5 euros & a bike 2."],
                        source="text", language="en")
    snips = present.snippets([chunks[0].id], "ferries")
    plain, marked, matched = snips[chunks[0].id]
    assert matched and "<mark>ferry</mark>" in marked
    assert "<script>" not in marked and "&lt; 5" in marked and "&amp;" in marked
    assert marked.replace("<mark>", "").replace("</mark>", "").count("<") == 0
    assert "<mark>" not in plain and "ferry" in plain


# --------------------------------------------------------------------------- hybrid through the API


def test_hybrid_search_groups_moments_by_asset_with_snippets_and_thumbnails(uploader, local_embedding):
    video = make_asset("video", uploader=uploader, title="harbour report")
    add_chunks(video, DOCS, starts=[0, 12, 24, 36, 48])
    for i, t in enumerate((0.0, 30.0, 45.0)):
        Keyframe.objects.create(asset=video, stage="keyframes", engine="e", engine_version="1", index=i,
                                frame_index=int(t * 25), scene_index=i, time=t, start=t, end=t, width=64, height=36,
                                storage_key="x", thumbnail=b"\xff\xd8\xff")
    other = make_asset("audio", uploader=uploader)
    add_chunks(other, ["A story about ships, boats and the sea."])
    r = client_for(uploader).get("/api/v1/search/", {"q": "how often does the boat go to the island"})
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["mode"] == body["effective_mode"] == "hybrid" and not body["degraded"]
    top = body["results"][0]
    assert top["asset"]["id"] == str(video.pk)
    best = top["moments"][0]
    assert best["source"] == "transcript" and best["start"] == 36 and best["end"] == 44
    assert "ferry" in best["snippet"].lower() and best["similarity"] > 0.3
    assert best["keyframe_index"] == 1 and best["thumbnail_url"] == f"/api/v1/assets/{video.pk}/keyframes/1.jpg"
    assert best["url"] == f"/console/assets/{video.pk}/?t=36.00"
    assert len(top["moments"]) <= 3 and len({r["asset"]["id"] for r in body["results"]}) == len(body["results"])
    # words: the text list alone finds the exact phrase and highlights it
    r = client_for(uploader).get("/api/v1/search/", {"q": "twenty minutes", "mode": "text"})
    m = r.json()["results"][0]["moments"][0]
    assert "<mark>twenty</mark> <mark>minutes</mark>" in m["snippet_html"] and m["text_rank"] > 0
    assert local_embedding == ["how often does the boat go to the island"]  # text mode embeds nothing


def test_invalid_parameters_use_the_error_format(uploader):
    c = client_for(uploader)
    for params in ({"q": ""}, {"q": "x", "mode": "fuzzy"}, {"q": "x", "kind": "hologram"}, {"q": "x", "limit": 0},
                   {"q": "x", "created_after": "yesterday"}):
        r = c.get("/api/v1/search/", params)
        assert r.status_code == 400, params
        assert r.json()["error"]["code"] == "invalid"


# --------------------------------------------------------------------------- filters keep pages full


@pytest.fixture
def library():
    """200 assets × 3 chunks of real docstring text; 12 assets are 'blocked' (a selective filter)."""
    paras = [_shorten(p) for p in stdlib_paragraphs()][:600]
    assert len(paras) == 600
    vecs = embed(paras)
    assets = []
    for i in range(200):
        a = make_asset("video", moderation="blocked" if i % 17 == 5 else "approved")
        add_chunks(a, paras[3 * i:3 * i + 3], vectors=vecs[3 * i:3 * i + 3])
        assets.append(a)
    with connection.cursor() as cur:
        cur.execute("ANALYZE insights_textchunk; ANALYZE assets_mediaasset")
    return assets


def _exact_groups(q: list[float], filters: Filters, n: int) -> list[Any]:
    with connection.cursor() as cur:
        cur.execute("SET LOCAL enable_indexscan = off")
    groups = rank.group_hits(query.semantic_chunks(q, None, filters, 2000), 3)
    with connection.cursor() as cur:
        cur.execute("SET LOCAL enable_indexscan = on")
    return [g.asset_id for g in groups[:n]]


def _force_hnsw() -> None:
    with connection.cursor() as cur:
        cur.execute("SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off; SET LOCAL enable_sort = off")


def test_a_selective_filter_is_ranked_exactly(library, local_embedding, monkeypatch):
    """A filter leaving few chunks skips the graph: the page is the exact top, in exact order."""
    f = Filters(moderation=("blocked",))
    assert 20 <= query.estimated_rows(f, None) <= 80  # 12 assets × 3 chunks, as the planner sees it
    assert query.exact_scan(f, None) and not query.exact_scan(Filters(), None)
    monkeypatch.setattr(query, "EXACT_MAX_ROWS", 10)
    assert not query.exact_scan(f, None)
    monkeypatch.setattr(query, "EXACT_MAX_ROWS", 20000)
    qtext = "how to read and write files on disk"
    q = embed([qtext])[0].tolist()
    exact = [str(x) for x in _exact_groups(q, f, 12)]
    page = services.search(services.SearchParams(q=qtext, mode="semantic", filters=f, limit=10, offset=0))
    assert [r["asset"]["id"] for r in page["results"]] == exact[:10]


def test_a_selective_filter_still_returns_full_pages(library, local_embedding, monkeypatch):
    monkeypatch.setattr(query, "EXACT_MAX_ROWS", 0)  # this test is about the graph walk
    blocked = {str(a.pk) for a in library if a.moderation_state == "blocked"}
    assert len(blocked) == 12
    qtext = "how to read and write files on disk"
    q = embed([qtext])[0].tolist()
    f = Filters(moderation=("blocked",))
    exact = [str(x) for x in _exact_groups(q, f, 12)]
    assert set(exact) == blocked
    # make the planner walk the HNSW graph (on a big table it does so by itself)
    _force_hnsw()
    sql, params = query.semantic_sql(f, None, 30)
    lit = query.vector_literal(q)
    with connection.cursor() as cur:
        cur.execute("EXPLAIN " + sql, [lit, *params, lit, 30])
        plan = " ".join(r[0] for r in cur.fetchall())
    assert "textchunk_hnsw_cosine" in plan, plan

    def page(offset: int) -> dict[str, Any]:
        return services.search(services.SearchParams(q=qtext, mode="semantic", filters=f, limit=10, offset=offset))

    p1, p2 = page(0), page(10)
    ids1 = [r["asset"]["id"] for r in p1["results"]]
    ids2 = [r["asset"]["id"] for r in p2["results"]]
    assert len(ids1) == 10 and p1["has_more"] and p1["next_offset"] == 10
    assert len(ids2) == 2 and not p2["has_more"]
    assert set(ids1) | set(ids2) == blocked and not set(ids1) & set(ids2)
    assert len(set(ids1) & set(exact[:10])) >= 9  # the approximate order agrees with exact search
    assert all(r["asset"]["moderation_state"] == "blocked" for r in p1["results"] + p2["results"])

    # pgvector's defaults (no iterative scan, ef_search 40) on the same plan: the page comes back short
    original = knn.hnsw_session
    monkeypatch.setattr(knn, "hnsw_session", lambda *a, **k: original(40, 20000, "off"))
    short = page(0)
    assert len(short["results"]) < 10, [r["asset"]["id"] for r in short["results"]]


def test_filters_kind_language_source_speech_tags_dates_and_uploader(uploader, other_uploader):
    old = make_asset("video", uploader=uploader, title="old")
    old.created_at = timezone.now() - dt.timedelta(days=40)
    old.save(update_fields=["created_at"])
    add_chunks(old, ["ferry timetable for the winter season"], language="en")
    TranscriptSegment.objects.create(asset=old, stage="transcribe", engine="e", engine_version="1", index=0,
                                     text="ferry timetable", start=0, end=2)
    img = make_asset("image", uploader=other_uploader, title="img", duration=None)
    add_chunks(img, ["FERRY TERMINAL"], source="ocr", language="en", starts=[None])
    Tag.objects.create(asset=img, stage="tags", engine="e", engine_version="1", label="container ship", score=0.8)
    de = make_asset("audio", uploader=uploader, title="de", moderation="in_review")
    add_chunks(de, ["Die Ferry fährt heute nicht"], language="de")

    def hits(**kw: Any) -> set[str]:
        return {h.asset_id.hex for h in query.text_chunks("ferry", Filters(**kw), 50)}

    assert hits() == {old.pk.hex, img.pk.hex, de.pk.hex}
    assert hits(kinds=("image",)) == {img.pk.hex}
    assert hits(kinds=("image", "audio")) == {img.pk.hex, de.pk.hex}
    assert hits(languages=("de",)) == {de.pk.hex}
    assert hits(sources=("ocr",)) == {img.pk.hex}
    assert hits(has_speech=True) == {old.pk.hex}
    assert hits(has_speech=False) == {img.pk.hex, de.pk.hex}
    assert hits(tags=("Container Ship",)) == {img.pk.hex}
    assert hits(moderation=("in_review",)) == {de.pk.hex}
    assert hits(uploader_id=other_uploader.pk) == {img.pk.hex}
    assert hits(created_before=timezone.now() - dt.timedelta(days=30)) == {old.pk.hex}
    assert hits(created_after=timezone.now() - dt.timedelta(days=30)) == {img.pk.hex, de.pk.hex}
    # detection labels count as tags too
    Detection.objects.create(asset=de, stage="detect", engine="e", engine_version="1", detector="objects",
                             label="boat", confidence=0.9, box=[0, 0, 1, 1])
    assert hits(tags=("boat", "container ship")) == {img.pk.hex, de.pk.hex}
    # through the API: a date bound includes its day, lists may repeat or be comma-separated
    c = client_for(uploader)
    day = (timezone.now() - dt.timedelta(days=40)).date().isoformat()
    r = c.get(f"/api/v1/search/?q=ferry&mode=text&created_before={day}")
    assert [x["asset"]["id"] for x in r.json()["results"]] == [str(old.pk)]
    r = c.get("/api/v1/search/?q=ferry&mode=text&kind=video&kind=audio,image")
    assert {x["asset"]["id"] for x in r.json()["results"]} == {str(old.pk), str(de.pk)}  # not the other's image


# --------------------------------------------------------------------------- permissions


def test_uploaders_only_find_their_own_assets(uploader, other_uploader, moderator_user, client):
    mine = make_asset("audio", uploader=uploader)
    add_chunks(mine, ["the ferry schedule of uploader a"])
    theirs = make_asset("audio", uploader=other_uploader)
    add_chunks(theirs, ["the ferry schedule of uploader b"])
    ImageEmbedding.objects.create(asset=theirs, stage="tags", engine="e", engine_version="1", model="m",
                                  embedding=[1.0] + [0.0] * 1279)

    def ids(c: Any, **params: Any) -> set[str]:
        r = c.get("/api/v1/search/", {"q": "ferry schedule", "mode": "text", **params})
        assert r.status_code == 200, r.content
        return {x["asset"]["id"] for x in r.json()["results"]}

    assert ids(client_for(uploader)) == {str(mine.pk)}
    assert ids(client_for(other_uploader)) == {str(theirs.pk)}
    assert ids(client_for(moderator_user)) == {str(mine.pk), str(theirs.pk)}
    assert ids(client_for(moderator_user), uploader="uploader-b") == {str(theirs.pk)}
    assert ids(client_for(moderator_user), uploader=str(uploader.pk)) == {str(mine.pk)}
    assert ids(client_for(uploader), uploader="uploader-a") == {str(mine.pk)}
    r = client_for(uploader).get("/api/v1/search/", {"q": "ferry", "uploader": "uploader-b"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    r = client_for(moderator_user).get("/api/v1/search/", {"q": "ferry", "uploader": "nobody-here"})
    assert r.status_code == 200 and r.json()["results"] == []  # a filter no asset matches
    # look-alike by asset id: another uploader's asset does not exist for you
    r = client_for(uploader).post("/api/v1/search/similar/", {"asset_id": str(theirs.pk)}, format="json")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = client_for(moderator_user).post("/api/v1/search/similar/", {"asset_id": str(theirs.pk)}, format="json")
    assert r.status_code == 200
    # and anonymous requests are refused
    assert client.get("/api/v1/search/", {"q": "ferry"}).status_code in (401, 403)
    assert client.get("/console/search/", {"q": "ferry"}).status_code == 302


# --------------------------------------------------------------------------- degraded


def test_semantic_search_degrades_to_text_when_no_worker_answers(uploader, settings, monkeypatch):
    import redis

    settings.MEDIAINTEL_SEARCH_EMBED_TIMEOUT = 0.5
    remote.clear_memory_cache()
    # a task no worker knows: even where a worker consumes `embed` on this broker, nobody answers
    monkeypatch.setattr(remote, "EMBED_QUERY_TASK", "mediaintel.search.nobody_answers_this")
    a = make_asset("audio", uploader=uploader)
    add_chunks(a, [FERRY])
    for mode in ("semantic", "hybrid"):
        q = "ferry island" if mode == "semantic" else "island ferry"  # two texts: no cached vector
        body = client_for(uploader).get("/api/v1/search/", {"q": q, "mode": mode}).json()
        assert body["degraded"] is True and body["effective_mode"] == "text" and body["mode"] == mode
        assert "no worker answered within 0.5s (queue 'search')" in body["degraded_reason"]
        assert [x["asset"]["id"] for x in body["results"]] == [str(a.pk)]
    # the broker itself unreachable: degraded too, not an error
    monkeypatch.setattr(remote, "_redis", lambda timeout: redis.Redis.from_url("redis://127.0.0.1:1/0",
                                                                              socket_connect_timeout=0.2))
    remote.clear_memory_cache()
    body = client_for(uploader).get("/api/v1/search/", {"q": "ferry"}).json()
    assert body["degraded"] is True and body["results"][0]["asset"]["id"] == str(a.pk)


# --------------------------------------------------------------------------- look-alike from stored rows


def _bits(ones: int) -> str:
    return "1" * ones + "0" * (256 - ones)


def test_similar_by_asset_uses_stored_hashes_threshold_and_quality(moderator_user, client):
    base = "10" * 128
    q = make_asset("image", duration=None)
    PerceptualHash.objects.create(asset=q, stage="hash", engine="pdq", engine_version="1", hash=base, quality=90)
    close = make_asset("image", duration=None)  # 20 bits away: a near-duplicate
    PerceptualHash.objects.create(asset=close, stage="hash", engine="pdq", engine_version="1",
                                  hash=_flip(base, 20), quality=90)
    far = make_asset("image", duration=None)  # 40 bits away: not one
    PerceptualHash.objects.create(asset=far, stage="hash", engine="pdq", engine_version="1",
                                  hash=_flip(base, 40), quality=90)
    weak = make_asset("image", duration=None)  # identical but too flat to trust
    PerceptualHash.objects.create(asset=weak, stage="hash", engine="pdq", engine_version="1", hash=base, quality=20)
    c = client_for(moderator_user)
    body = c.post("/api/v1/search/similar/", {"asset_id": str(q.pk), "mode": "pdq"}, format="json").json()
    assert [(r["asset"]["id"], r["pdq_distance"]) for r in body["results"]] == [(str(close.pk), 20)]
    assert body["results"][0]["near_duplicate"] is True
    body = c.post("/api/v1/search/similar/", {"asset_id": str(q.pk), "mode": "pdq", "threshold": 45,
                                              "min_quality": 10}, format="json").json()
    assert [r["pdq_distance"] for r in body["results"]] == [0, 20, 40]
    r = c.post("/api/v1/search/similar/", {"mode": "pdq"}, format="json")
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid"
    # the console's "more like this"
    client.force_login(moderator_user)
    page = client.get("/console/search/", {"similar": str(q.pk)}).content.decode()
    assert "near-duplicate · PDQ 20" in page and f"/console/assets/{close.pk}/" in page
    assert f"/console/assets/{far.pk}/" not in page


def _flip(bits: str, n: int) -> str:
    return "".join(("1" if b == "0" else "0") if i < n else b for i, b in enumerate(bits))


# --------------------------------------------------------------------------- tags become searchable text


def test_searchable_texts_adds_tags_labels_and_their_concepts_per_keyframe_run():
    from workers.base import StageContext
    from workers.tasks.text import searchable_texts

    video = make_asset("video")
    for kf, t, labels in ((0, 0.0, ["tabby", "remote control"]), (1, 5.0, ["remote control", "tabby"]),
                          (2, 9.0, ["container ship"])):
        for j, label in enumerate(labels):
            Tag.objects.create(asset=video, stage="tags", engine="e", engine_version="1", label=label,
                               score=0.9 - j * 0.1, keyframe_index=kf, start=t, end=t)
    Detection.objects.create(asset=video, stage="detect", engine="e", engine_version="1", detector="nudity",
                             label="FACE_FEMALE", confidence=0.7, keyframe_index=2, start=9.0, end=9.0,
                             box=[0, 0, 1, 1])
    tags = [c for c in searchable_texts(StageContext(run=None, asset=video)) if c["source"] == "tags"]
    assert tags == [
        {"source": "tags", "text": "animal, cat, mammal, tabby, electronics, remote, remote control", "start": 0.0,
         "end": 5.0, "language": "en"},
        {"source": "tags", "text": "boat, container ship, vehicle, face female", "start": 9.0, "end": 9.0,
         "language": "en"},
    ]
    image = make_asset("image", duration=None)
    Tag.objects.create(asset=image, stage="tags", engine="e", engine_version="1", label="lakeside", score=0.5)
    assert [c for c in searchable_texts(StageContext(run=None, asset=image)) if c["source"] == "tags"] == [
        {"source": "tags", "text": "lakeside", "start": None, "end": None, "language": "en"}]


# --------------------------------------------------------------------------- console


def test_console_search_page_links_hits_to_the_second(uploader, client):
    a = make_asset("video", uploader=uploader, title="harbour report")
    add_chunks(a, DOCS, starts=[0, 12, 24, 36, 48])
    client.force_login(uploader)
    page = client.get("/console/search/", {"q": "twenty minutes", "mode": "text"})
    assert page.status_code == 200
    html = page.content.decode()
    assert "<mark>twenty</mark>" in html and f'href="/console/assets/{a.pk}/?t=36.00"' in html
    assert '<a href="/console/search/">Search</a>' in html  # in the header
    partial = client.get("/console/search/", {"q": "twenty minutes", "mode": "text"}, HTTP_HX_REQUEST="true")
    assert "<html" not in partial.content.decode() and "<mark>twenty</mark>" in partial.content.decode()
    detail = client.get(f"/console/assets/{a.pk}/?t=36.00").content.decode()
    assert "currentTime = t" in detail and 'get("t")' in detail


def test_schema_documents_the_search_endpoints(client):
    schema = client.get("/api/schema/").content.decode()
    for needle in ("/api/v1/search/:", "/api/v1/search/similar/:", "operationId: search_similar",
                   "SearchResponse", "SimilarResponse", "has_speech", "multipart/form-data"):
        assert needle in schema, needle


def test_the_web_side_of_search_never_imports_torch():
    import subprocess
    import sys

    code = ("import django; django.setup(); from django.urls import get_resolver; get_resolver().url_patterns; "
            "import apps.search.views, apps.search.console, apps.search.services, apps.search.remote, sys; "
            "print(sorted(m for m in ('torch', 'sentence_transformers', 'transformers') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env={**__import__("os").environ, "DJANGO_SETTINGS_MODULE": "mediaintel.settings_test"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "[]", r.stdout


@pytest.mark.parametrize("tags", [{}, {"a": "dog"}, ["dog"], 3, None])
def test_a_json_look_alike_query_takes_its_list_filters_as_strings_only(moderator_user, tags):
    """The schema types `tags` (and every comma-separated filter) as a string; a JSON body that
    gives another JSON type is refused naming the field (it was read as the text of that value)."""
    q = make_asset("image", duration=None)
    r = client_for(moderator_user).post("/api/v1/search/similar/", {"asset_id": str(q.pk), "tags": tags},
                                        format="json")
    assert r.status_code == 400, r.content
    assert r.json()["error"]["code"] == "invalid" and "tags" in r.json()["error"]["detail"]
    ok = client_for(moderator_user).post("/api/v1/search/similar/", {"asset_id": str(q.pk), "tags": "dog,cat"},
                                         format="json")
    assert ok.status_code == 200
