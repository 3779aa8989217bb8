"""The Python client (``clients/python``) against a live server and real workers.

Every request the client makes in these tests is recorded and checked against the server's own
OpenAPI document, so a client path or method that the API does not describe fails here.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client

from apps.accounts.services import create_token
from apps.audit.models import AuditEvent
from apps.pipeline.models import DeadLetter, StageRun
from apps.pipeline.services import bury
from tests.conftest import wait_for
from tests.media import make_image

CLIENT = Path(__file__).resolve().parents[1] / "clients" / "python"
sys.path.insert(0, str(CLIENT))
from mediaintel_client import CHUNK, Asset, MediaIntel, MediaIntelError  # noqa: E402

NOTE = ("The harbour festival opens on Saturday with boats, music and food stalls.\n\n"
        "Some visitor wrote: you are a stupid idiot and I will kill you.\n")


class RecordingTransport(httpx.HTTPTransport):
    """A real HTTP transport that remembers (method, path) of every request it sends."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, str]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append((request.method, request.url.path))
        return super().handle_request(request)


class CountingReader(io.BytesIO):
    """A file object that remembers the largest read, to show the upload is streamed."""

    largest = 0

    def read(self, n: int | None = -1) -> bytes:  # type: ignore[override]
        self.largest = max(self.largest, len(data := super().read(n)))
        return data


def schema_operations() -> list[tuple[str, re.Pattern[str]]]:
    doc = Client().get("/api/schema/", {"format": "json"}).json()
    ops = []
    for path, item in doc["paths"].items():
        rx = re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path.rstrip("/"))) + "/?$")
        ops += [(method.upper(), rx) for method in item if method in ("get", "post", "put", "patch", "delete")]
    return ops


def token_for(name: str, role: str) -> str:
    user = get_user_model().objects.create_user(name, password="x")
    user.groups.add(Group.objects.get(name=role))
    return create_token(user, actor=user, name="client-test")[1]


def test_client_uploads_waits_searches_reviews_and_replays_against_the_live_api(
        live_server, start_worker, isolated_storage, tmp_path):
    start_worker()
    transport = RecordingTransport()
    note = tmp_path / "visitor-note.txt"
    note.write_text(NOTE)
    photo = tmp_path / "harbour.png"
    make_image(photo, size=(640, 480), background="noise:7")
    changes: list[tuple[int, int, str]] = []

    admin = MediaIntel(live_server.url, token_for("ada", "admin"), transport=transport)
    mo = MediaIntel(live_server.url, token_for("mo", "moderator"), transport=transport)  # reviews others' uploads
    with MediaIntel(live_server.url, token_for("uma", "uploader"), transport=transport) as mi, mo, admin:
        text = mi.upload(note, title="Visitor note")
        image = mi.upload(photo)
        assert isinstance(text, Asset) and text.kind == "text" and not text.duplicate
        assert mi.upload(note).duplicate and mi.upload(note).id == text.id  # the same bytes: the same asset

        ready = mi.wait_ready([text, image.id], timeout=300,
                              progress=lambda done, total, a: changes.append((done, total, a.status)))
        assert [a.id for a in ready] == [text.id, image.id]
        assert all(a.status == "ready" for a in ready), ready
        assert changes[-1][:2] == (2, 2) and all(total == 2 for _, total, _ in changes)

        insights = mi.insights(text.id)
        assert insights["text_flags"], insights.keys()
        hits = mi.search("harbour festival boats", mode="text")
        assert hits["results"][0]["asset"]["id"] == text.id
        similar = mi.similar(image=photo, mode="pdq")
        assert similar["results"][0]["asset"]["id"] == image.id and similar["results"][0]["pdq_distance"] == 0
        assert mi.similar(asset_id=image.id, mode="pdq")["results"] == []  # never itself
        # list filters go as the API's comma-separated lists, in a query, a JSON body and a form
        assert mi.search("harbour festival boats", mode="text", kind=["text", "image"])["results"][0]["asset"]["id"] \
            == text.id
        assert mi.search("harbour festival boats", mode="text", kind=["image"])["results"] == []
        assert mi.similar(asset_id=image.id, mode="pdq", kind=["image", "video"])["results"] == []
        assert mi.similar(image=photo, mode="pdq", kind=["image", "video"])["results"][0]["asset"]["id"] == image.id
        assert mi.similar(image=photo, mode="pdq", kind=["video"])["results"] == []
        assert [a.id for a in mi.assets(kind="text")] == [text.id]

        item = next(mo.review_items(state="open"))
        assert item["asset"] == text.id
        assert mo.claim(item["id"])["state"] == "claimed"
        assert mo.release(item["id"])["state"] == "open"
        mo.claim(item["id"])
        decision = mo.decide(item["id"], "reject", reason_codes=item["categories"][:1], note="threat")
        assert decision["outcome"] == "reject"
        with pytest.raises(MediaIntelError) as refused:
            mo.decide(item["id"], "approve")
        assert refused.value.status == 409 and refused.value.code

        # a stage whose worker was lost on its last attempt is dead; replay runs it again
        run = StageRun.objects.filter(asset_id=text.id, stage="language").get()
        StageRun.objects.filter(pk=run.pk).update(status="running")
        assert bury(run.pk, None, None, "", permanent=False, reason="worker lost")
        dead = next(admin.dead_letters())
        assert dead["stage"] == "language"
        assert admin.replay(dead["id"])["replayed"] is True
        wait_for(lambda: StageRun.objects.get(pk=run.pk).status == "done", 120, what="the replayed stage")
        with pytest.raises(MediaIntelError) as again:
            admin.replay(dead["id"])
        assert again.value.status == 409
        assert admin.discard(dead["id"])["discarded"] is True
        assert list(admin.dead_letters()) == []
        tries = AuditEvent.objects.filter(verb="dlq.replayed", target_id=dead["id"]).order_by("id")
        assert [(e.actor_label, e.payload["sent"]) for e in tries] == [("ada", True), ("ada", False)]
        assert again.value.code == "not_dead" and again.value.detail["dead_letter"]["id"] == dead["id"]

        # a large file is streamed in chunks, and the server's refusal arrives as a typed error
        blob = CountingReader(b"\x00\x01garbage" * (3 * CHUNK))
        with pytest.raises(MediaIntelError) as unsupported:
            mi.upload(blob, filename="data.bin")
        assert unsupported.value.status == 415 and unsupported.value.message
        assert 0 < blob.largest <= CHUNK
        with pytest.raises(MediaIntelError) as missing:
            mi.asset("00000000-0000-0000-0000-000000000000")
        assert missing.value.status == 404

    assert DeadLetter.objects.filter(pk=dead["id"], discarded=True).exists()
    operations = schema_operations()
    undocumented = {(m, p) for m, p in transport.seen if not any(m == om and rx.match(p) for om, rx in operations)}
    assert not undocumented, f"the client calls operations the API does not document: {sorted(undocumented)}"


def test_the_readme_client_example_runs_as_written(live_server, start_worker, isolated_storage, tmp_path):
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    example = re.search(r"<!-- client-example -->\n```python\n(.*?)```", readme, re.S)
    assert example, "README.md lost its client example"
    start_worker()
    library = tmp_path / "library"
    library.mkdir()
    (library / "festival.txt").write_text("Boats and music: the harbour festival opens on Saturday.\n")
    (library / "recipe.txt").write_text("Whisk two eggs with sugar until pale, then fold in the flour.\n")
    script = tmp_path / "example.py"
    script.write_text(example.group(1))
    env = {**os.environ, "MEDIAINTEL_URL": live_server.url, "MEDIAINTEL_TOKEN": token_for("uma", "uploader"),
           "PYTHONPATH": str(CLIENT)}
    run = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr
    out = run.stdout.splitlines()
    assert "2/2 ready festival.txt ready" in out or "2/2 ready recipe.txt ready" in out, out
    hits = [line for line in out if not re.match(r"\d+/\d+ ready ", line)]
    assert hits and hits[0].startswith("festival.txt ["), out  # the festival note ranks first for its own words
