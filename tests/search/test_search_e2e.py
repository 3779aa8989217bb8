"""Real media through real workers and models, then searched through the API.

* a spoken phrase (espeak) is found by a paraphrase, in the transcript window that holds it;
* on-screen text (OCR) is found by its exact words, at the time it is shown;
* a resized, re-encoded copy of an image finds the original (PDQ and embedding), and an asset's
  stored rows find its near-duplicate ("more like this").
The query text and the query image are embedded by the worker (``mediaintel.search.*`` tasks on
the ``embed`` queue), never in the test or web process.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from apps.assets.services import ingest_local_file
from apps.insights import models as im
from apps.search import remote
from tests import media
from tests.pipeline.helpers import wait_stage
from tests.search.conftest import client_for
from tests.search.helpers import scene_image

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

SPEECH = [  # (start second, sentence)
    (0.5, "Welcome to the evening news. Today we talk about the new city library and the school holidays."),
    (11.0, "The local bakery has opened a new shop near the market square, selling bread and cakes."),
    (21.0, "Tickets for the concert in the old theatre are available online from Monday."),
    (31.0, "The ferry to the island leaves every twenty minutes."),
    (39.0, "In sports, the football team won its third match in a row."),
]
DURATION = 48.0
OVERLAY = ("HARBOUR MARKET OPENS AT DAWN", 12.0, 19.5)


def _speech_track(tmp_path: Path) -> tuple[Path, list[tuple[float, float]]]:
    """One wav with each sentence at its start second; returns the (start, end) of each sentence."""
    rate = 16000
    track = np.zeros(int(DURATION * rate), np.float32)
    spans = []
    for i, (t0, text) in enumerate(SPEECH):
        wav = media.make_speech_wav(tmp_path / f"s{i}.wav", text, sample_rate=rate)
        samples, _ = media.read_wav(wav)
        start = int(t0 * rate)
        assert start + len(samples) <= len(track), f"sentence {i} overruns the next"
        track[start:start + len(samples)] = samples
        spans.append((t0, t0 + len(samples) / rate))
    for (_, e), (s, _) in itertools.pairwise(spans):
        assert e < s, "sentences overlap"
    return media.write_wav(tmp_path / "speech.wav", track, rate), spans


@pytest.fixture
def moderator(django_user_model: Any) -> Any:
    from django.contrib.auth.models import Group

    user = django_user_model.objects.create_user("search-mod", password="x")
    user.groups.add(Group.objects.get(name="moderator"))
    return client_for(user)


def test_spoken_paraphrase_and_on_screen_words_find_their_moments(start_worker, isolated_storage, tmp_path,
                                                                  moderator, settings):
    # a cold worker child loads MiniLM on its first query (seconds on a busy host): wait for it here;
    # the timeout and the degraded path have their own test
    settings.MEDIAINTEL_SEARCH_EMBED_TIMEOUT = 90
    remote.clear_memory_cache()
    start_worker(concurrency=2)
    wav, spans = _speech_track(tmp_path)
    scenes = (("#1d3557", 12.0), ("#457b9d", 8.0), ("gradient", 14.0), ("#2a9d8f", 14.0))
    video = media.make_video(tmp_path / "news.mp4", scenes, size=(960, 540), audio_wav=wav, motion=False,
                             text_overlays=[(OVERLAY[0], OVERLAY[1], OVERLAY[2])])
    asset = ingest_local_file(video).asset
    run = wait_stage(asset, "text_embed", {"done", "dead", "skipped"}, timeout=900)
    assert run.status == "done", (run.status, run.error_message)
    chunks = im.TextChunk.objects.filter(asset=asset)
    assert chunks.filter(source="transcript").count() >= 2  # several windows: landing in the right one matters
    assert all(c.tsv is not None for c in chunks)
    assert {c.language for c in chunks.filter(source="transcript")} == {"en"}

    # 1. a paraphrase of the spoken sentence, by meaning (the query is embedded by the worker)
    ferry_start, ferry_end = spans[3]
    for mode in ("semantic", "hybrid"):
        r = moderator.get("/api/v1/search/", {"q": "how often does the boat go to the island", "mode": mode})
        assert r.status_code == 200, r.content
        body = r.json()
        assert not body["degraded"], body["degraded_reason"]
        top = body["results"][0]
        assert top["asset"]["id"] == str(asset.pk)
        best = top["moments"][0]
        assert best["source"] == "transcript", top["moments"]
        windows = [(c.start, c.end, c.text) for c in chunks.filter(source="transcript").order_by("start")]
        assert best["start"] <= ferry_start + 0.5 and best["end"] >= ferry_end - 1.0, (best, spans[3], windows,
                                                                                          top["moments"])
        assert "ferry" in best["snippet"].lower() or "fairy" in best["snippet"].lower(), best["snippet"]
        assert best["url"].startswith(f"/console/assets/{asset.pk}/?t=")
        if mode == "semantic":
            assert body["query_vector_cache"] == "miss" and body["timing_ms"]["embed"] > 0
        else:
            assert body["query_vector_cache"] == "memory"  # same text: cached in this process
    # the other windows are worse matches than the ferry one
    windows = chunks.filter(source="transcript").order_by("start")
    ferry_windows = [w for w in windows if w.start <= ferry_start + 0.5 and w.end >= ferry_end - 1.0]
    assert ferry_windows and len(ferry_windows) < windows.count()
    # the worker also cached the vector in Redis: a new process (empty LRU) gets it from there
    remote.clear_memory_cache()
    body = moderator.get("/api/v1/search/", {"q": "how often does the boat go to the island",
                                             "mode": "semantic"}).json()
    assert body["query_vector_cache"] == "redis" and body["results"][0]["asset"]["id"] == str(asset.pk)

    # 2. on-screen words, exactly, with the time they are shown and a keyframe thumbnail
    body = moderator.get("/api/v1/search/", {"q": "harbour market", "mode": "text"}).json()
    assert body["results"] and body["results"][0]["asset"]["id"] == str(asset.pk), body
    ocr = [m for m in body["results"][0]["moments"] if m["source"] == "ocr"]
    assert ocr, body["results"][0]["moments"]
    m = ocr[0]
    assert OVERLAY[1] - 1.0 <= m["start"] <= OVERLAY[2] and "<mark>" in m["snippet_html"].lower()
    assert "harbour" in m["snippet"].lower()
    thumb = moderator.get(m["thumbnail_url"])
    assert thumb.status_code == 200 and thumb.content[:3] == b"\xff\xd8\xff"
    kf = im.Keyframe.objects.get(asset=asset, index=m["keyframe_index"])
    assert OVERLAY[1] - 1.0 <= kf.time <= OVERLAY[2] + 1.0
    # words that are spoken but never shown are transcript hits only: the source filter keeps what is asked
    body = moderator.get("/api/v1/search/", {"q": "library", "mode": "text", "source": "ocr"}).json()
    assert body["results"] == []
    body = moderator.get("/api/v1/search/", {"q": "library", "mode": "text", "source": "transcript"}).json()
    assert {m["source"] for r in body["results"] for m in r["moments"]} == {"transcript"}


def test_resized_copy_of_an_image_finds_the_original(start_worker, isolated_storage, tmp_path, moderator, settings):
    settings.MEDIAINTEL_SEARCH_IMAGE_TIMEOUT = 90
    start_worker(concurrency=2)
    original = tmp_path / "original.png"
    scene_image(1).save(original)
    others = []
    for seed in (2, 3):
        p = tmp_path / f"other{seed}.png"
        scene_image(seed).save(p)
        others.append(p)
    copy = tmp_path / "copy.jpg"
    img = scene_image(1)
    img.resize((img.width * 45 // 100, img.height * 45 // 100)).save(copy, "JPEG", quality=70)

    assets = {name: ingest_local_file(p).asset for name, p in
              (("original", original), ("other2", others[0]), ("other3", others[1]), ("copy", copy))}
    for a in assets.values():
        for stage in ("hash", "tags"):
            run = wait_stage(a, stage, {"done", "dead", "skipped"}, timeout=600)
            assert run.status == "done", (stage, run.status, run.error_message)
    orig_id = str(assets["original"].pk)

    # an uploaded query image: analysed by the worker (EfficientNet embedding + PDQ), not stored
    def upload(field: str = "file", **params: Any) -> dict[str, Any]:
        with copy.open("rb") as f:
            r = moderator.post("/api/v1/search/similar/", {field: f, **params}, format="multipart")
        assert r.status_code == 200, r.content
        assert r.headers.get("Deprecation") == ("true" if field == "image" else None)
        return r.json()

    body = upload(mode="both")
    res = body["results"]
    assert res[0]["asset"]["id"] in (orig_id, str(assets["copy"].pk))  # the identical stored copy may tie
    by_id = {r["asset"]["id"]: r for r in res}
    o = by_id[orig_id]
    assert o["near_duplicate"] and o["pdq_distance"] <= 31, o
    assert o["similarity"] >= 0.85, o
    for name in ("other2", "other3"):
        r = by_id.get(str(assets[name].pk))
        assert r is None or (not r["near_duplicate"] and r["similarity"] < o["similarity"]), r
    assert body["query"]["pdq_quality"] >= 50 and len(body["query"]["pdq_hex"]) == 64

    pdq = upload(mode="pdq")
    assert {r["asset"]["id"] for r in pdq["results"]} == {orig_id, str(assets["copy"].pk)}
    alias = upload("image", mode="pdq")  # the field's earlier name still works
    assert {r["asset"]["id"] for r in alias["results"]} == {orig_id, str(assets["copy"].pk)}
    with copy.open("rb") as f, copy.open("rb") as g:
        r = moderator.post("/api/v1/search/similar/", {"file": f, "image": g}, format="multipart")
    assert r.status_code == 400 and "file" in r.json()["error"]["detail"], r.content
    emb = upload(mode="embedding")
    ranked = [r["asset"]["id"] for r in emb["results"]]
    assert ranked.index(orig_id) < min(ranked.index(str(assets[n].pk)) for n in ("other2", "other3"))

    # more like this: the stored copy finds the original as a near-duplicate, never itself
    body = moderator.post("/api/v1/search/similar/", {"asset_id": str(assets["copy"].pk)}, format="json").json()
    ids = [r["asset"]["id"] for r in body["results"]]
    assert ids[0] == orig_id and str(assets["copy"].pk) not in ids
    assert body["results"][0]["near_duplicate"] and body["results"][0]["pdq_distance"] <= 31
    assert all(not r["near_duplicate"] for r in body["results"][1:])

    # an unreadable upload is refused in the API's error format
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image at all")
    with bad.open("rb") as f:
        r = moderator.post("/api/v1/search/similar/", {"file": f}, format="multipart")
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid"
