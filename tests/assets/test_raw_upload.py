"""The raw-body upload: ``POST /api/v1/assets/`` with ``Content-Type: application/octet-stream``."""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.files.storage import default_storage
from rest_framework.test import APIClient

from apps.assets.models import MediaAsset
from tests import media

pytestmark = pytest.mark.django_db(transaction=True)




@pytest.fixture
def uploader():
    user = get_user_model().objects.create_user("raw1", password="pw-raw1")
    user.groups.add(Group.objects.get(name="uploader"))
    c = APIClient()
    c.force_authenticate(user)
    return c


def _raw(client, data: bytes, disposition: str | None = 'attachment; filename="clip.mp4"', query: str = ""):
    extra = {"HTTP_CONTENT_DISPOSITION": disposition} if disposition is not None else {}
    return client.post(f"/api/v1/assets/{query}", data=data, content_type="application/octet-stream", **extra)


def _temp_files() -> set[str]:
    return {p for p in os.listdir(tempfile.gettempdir()) if p.startswith(("ingest-", "tmp"))}


def test_raw_body_is_ingested_like_a_multipart_upload(uploader, tmp_path, _no_pipeline):
    data = media.make_video(tmp_path / "v.mp4", (("red", 1.0), ("noise", 1.0)), size=(320, 240)).read_bytes()
    r = _raw(uploader, data, query="?title=Raw%20clip&external_id=ext-9&metadata=%7B%22a%22%3A%201%7D")
    assert r.status_code == 201, r.json()
    body = r.json()
    assert body["sha256"] == hashlib.sha256(data).hexdigest() and body["size"] == len(data)
    assert (body["kind"], body["filename"], body["title"], body["external_id"], body["metadata"]) == (
        "video", "clip.mp4", "Raw clip", "ext-9", {"a": 1})
    asset = MediaAsset.objects.get(pk=body["id"])
    assert default_storage.exists(asset.storage_key) and _no_pipeline == [asset.pk]
    # the same bytes through multipart: the same asset
    f = io.BytesIO(data)
    f.name = "again.mp4"
    again = uploader.post("/api/v1/assets/", {"file": f}, format="multipart")
    assert again.status_code == 200 and again.json()["id"] == body["id"] and again.json()["duplicate"] is True


def test_raw_body_filename_star_and_sanitizing(uploader, tmp_path):
    data = media.make_image(tmp_path / "p.png", "RAW").read_bytes()
    r = _raw(uploader, data, disposition="attachment; filename*=UTF-8''..%2F..%2F%E2%82%AC%20rates.png")
    assert r.status_code == 201, r.json()
    assert r.json()["filename"] == "€ rates.png"


def test_raw_body_without_a_filename_is_named_upload_and_typed_by_its_bytes(uploader):
    """The header is optional (the operation's schema says so; it was a 400 before)."""
    r = _raw(uploader, b"hello\n", disposition=None)
    assert r.status_code == 201, r.content
    assert r.json()["filename"].startswith("upload") and r.json()["kind"] == "text"
    assert _raw(uploader, b"hello again\n", disposition="").status_code == 201  # an empty header: the same


def test_raw_body_with_an_empty_metadata_parameter_has_no_metadata(uploader):
    r = _raw(uploader, b"no metadata\n", disposition=None, query="?metadata=&title=")
    assert r.status_code == 201 and r.json()["metadata"] == {}, r.content


def test_raw_body_rejections_leave_nothing(uploader, settings):
    before = _temp_files()
    exe = _raw(uploader, b"MZ\x90\x00" + bytes(range(256)) * 8, 'attachment; filename="setup.png"')
    assert exe.status_code == 415 and exe.json()["error"]["code"] == "unsupported_type"
    settings.MEDIAINTEL_LIMITS = {**settings.MEDIAINTEL_LIMITS, "max_bytes": 1000}
    big = _raw(uploader, b"x" * 5000, 'attachment; filename="big.txt"')
    assert big.status_code == 413 and big.json()["error"]["code"] == "too_large"
    assert MediaAsset.objects.count() == 0
    root = Path(default_storage.location) / "blobs"
    assert not root.exists() or not any(p.is_file() for p in root.rglob("*"))
    assert _temp_files() <= before
