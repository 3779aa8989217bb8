"""Ingestion through the API against real PostgreSQL and the local blob store."""

from __future__ import annotations

import io
import os
import threading
import zipfile
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.files.storage import default_storage
from rest_framework.test import APIClient

from apps.assets.models import MediaAsset
from apps.audit.models import AuditEvent
from tests import media

pytestmark = pytest.mark.django_db(transaction=True)




def _user(name: str, role: str):
    user = get_user_model().objects.create_user(name, password="pw-" + name)
    user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def uploader():
    c = APIClient()
    c.force_authenticate(_user("up1", "uploader"))
    return c


@pytest.fixture
def admin():
    c = APIClient()
    c.force_authenticate(_user("adm", "admin"))
    return c


def _upload(client, path: Path, name: str | None = None, headers: dict[str, str] | None = None, **extra):
    with open(path, "rb") as f:
        data = {"file": (io.BytesIO(f.read()))}
    data["file"].name = name or path.name
    meta = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in (headers or {}).items()}
    return client.post("/api/v1/assets/", {**data, **extra}, format="multipart", **meta)


def _temp_files() -> set[str]:
    import tempfile

    return {p for p in os.listdir(tempfile.gettempdir()) if p.startswith(("ingest-", "tmp"))}


@pytest.fixture
def samples(tmp_path):
    return {
        "image": media.make_image(tmp_path / "photo.png", "HELLO"),
        "jpeg": media.make_image(tmp_path / "photo.jpg", "JPEG", background="noise"),
        "audio": media.make_tone_wav(tmp_path / "tone.wav", 1.5),
        "video": media.make_video(tmp_path / "clip.mp4", (("red", 1.0), ("noise", 1.0)), size=(320, 240)),
        "text": _write(tmp_path / "notes.md", "# Title\n\nSome *markdown* text.\n"),
        "srt": _write(tmp_path / "subs.srt", "1\n00:00:01,000 --> 00:00:02,500\nHello there\n"),
    }


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize("name,kind,mime", [
    ("image", "image", "image/png"), ("jpeg", "image", "image/jpeg"), ("audio", "audio", "audio/wav"),
    ("video", "video", "video/mp4"), ("text", "text", "text/markdown"), ("srt", "text", "application/x-subrip"),
])
def test_each_kind_is_ingested_probed_stored_and_audited(uploader, samples, name, kind, mime, _no_pipeline):
    r = _upload(uploader, samples[name], title="t", external_id="ext-1", metadata='{"a": 1}')
    assert r.status_code == 201, r.json()
    body = r.json()
    assert (body["kind"], body["mime_type"], body["duplicate"]) == (kind, mime, False)
    asset = MediaAsset.objects.get(pk=body["id"])
    assert asset.storage_key == f"blobs/{asset.sha256[:2]}/{asset.sha256[2:4]}/{asset.sha256}"
    assert default_storage.exists(asset.storage_key)
    assert asset.metadata == {"a": 1} and asset.external_id == "ext-1"
    if kind == "video":
        assert (asset.width, asset.height) == (320, 240) and abs(asset.duration - 2.0) < 0.2
    if kind == "audio":
        assert asset.sample_rate == 16000 and abs(asset.duration - 1.5) < 0.05
    assert AuditEvent.objects.filter(verb="asset.ingested", target_id=str(asset.pk)).count() == 1
    assert _no_pipeline == [asset.pk]


def test_same_bytes_twice_give_one_asset_and_one_blob(uploader, samples):
    first = _upload(uploader, samples["jpeg"])
    second = _upload(uploader, samples["jpeg"], name="other-name.jpg")
    assert first.status_code == 201 and second.status_code == 200
    assert second.json()["duplicate"] is True and second.json()["id"] == first.json()["id"]
    assert MediaAsset.objects.count() == 1
    blob_dir = Path(default_storage.path(MediaAsset.objects.get().storage_key)).parent
    assert len(list(blob_dir.iterdir())) == 1


def test_idempotency_key_replays_the_first_response(uploader, samples):
    a = _upload(uploader, samples["image"], headers={"Idempotency-Key": "k-123"})
    b = _upload(uploader, samples["audio"], headers={"Idempotency-Key": "k-123"})
    assert a.status_code == b.status_code == 201
    assert b.json()["id"] == a.json()["id"] and b["Idempotent-Replayed"] == "true"
    assert MediaAsset.objects.count() == 1


def _assert_rejected(resp, status: int, code: str):
    assert resp.status_code == status, resp.content
    err = resp.json()["error"]
    assert err["code"] == code and err["message"]
    assert MediaAsset.objects.count() == 0
    root = Path(default_storage.location) / "blobs"
    assert not root.exists() or not any(p.is_file() for p in root.rglob("*"))


def test_bad_inputs_are_refused_with_a_reason_and_leave_nothing(uploader, tmp_path, samples):
    before = _temp_files()
    empty = _write(tmp_path / "empty.mp4", "")
    _assert_rejected(_upload(uploader, empty), 422, "empty")
    exe = tmp_path / "virus.jpg"
    exe.write_bytes(b"MZ\x90\x00" + os.urandom(2000))
    _assert_rejected(_upload(uploader, exe), 415, "unsupported_type")
    pdf = tmp_path / "doc.png"
    pdf.write_bytes(b"%PDF-1.7\n" + os.urandom(500))
    _assert_rejected(_upload(uploader, pdf), 415, "unsupported_type")
    truncated = media.truncate_copy(samples["jpeg"], tmp_path / "cut.jpg", keep=0.4)
    _assert_rejected(_upload(uploader, truncated), 422, "corrupt")
    cut_video = media.truncate_copy(samples["video"], tmp_path / "cut.mp4", keep=0.5)
    _assert_rejected(_upload(uploader, cut_video), 422, "corrupt")
    garbage = media.make_garbage_file(tmp_path / "x.mkv", header=b"\x1a\x45\xdf\xa3")
    _assert_rejected(_upload(uploader, garbage), 422, "corrupt")
    poly = tmp_path / "poly.jpg"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("payload.html", "<script>alert(1)</script>")
    poly.write_bytes(samples["jpeg"].read_bytes() + buf.getvalue())
    _assert_rejected(_upload(uploader, poly), 422, "polyglot")
    assert _temp_files() <= before
    assert AuditEvent.objects.filter(verb="asset.rejected").count() == 7


def test_too_large_and_decompression_bomb(uploader, tmp_path, settings):
    from PIL import Image

    bomb = tmp_path / "bomb.png"
    Image.new("1", (20000, 20000)).save(bomb, optimize=True)  # ~60 KB file, 400 Mpx
    assert bomb.stat().st_size < 200_000
    _assert_rejected(_upload(uploader, bomb), 413, "too_many_pixels")
    settings.MEDIAINTEL_LIMITS = {**settings.MEDIAINTEL_LIMITS, "max_bytes": 1000}
    big = media.make_image(tmp_path / "big.png", background="noise")
    _assert_rejected(_upload(uploader, big), 413, "too_large")


def test_hostile_filenames_are_sanitized(uploader, samples):
    r = _upload(uploader, samples["image"], name="../../etc/pass\x00wd\u202e.png")
    assert r.status_code == 201
    name = r.json()["filename"]
    assert "/" not in name and ".." not in name and "\x00" not in name
    asset = MediaAsset.objects.get()
    assert Path(default_storage.path(asset.storage_key)).is_relative_to(Path(default_storage.location))


def test_concurrent_uploads_of_the_same_file_create_one_asset(samples):
    from django.db import connection

    user = _user("conc", "uploader")
    results: list[int] = []

    def go() -> None:
        c = APIClient()
        c.force_authenticate(user)
        results.append(_upload(c, samples["video"]).status_code)
        connection.close()

    threads = [threading.Thread(target=go) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results).count(201) == 1 and len(results) == 4 and set(results) <= {200, 201}
    assert MediaAsset.objects.count() == 1


def test_list_filters_detail_content_range_and_admin_delete(uploader, admin, samples):
    vid = _upload(uploader, samples["video"], title="Holiday clip").json()
    _upload(uploader, samples["image"], title="Cat")
    r = uploader.get("/api/v1/assets/", {"kind": "video"})
    assert [a["id"] for a in r.json()["results"]] == [vid["id"]]
    assert uploader.get("/api/v1/assets/", {"q": "holiday"}).json()["count"] == 1
    detail = uploader.get(f"/api/v1/assets/{vid['id']}/").json()
    assert detail["probe"]["video_codec"] and "stages" in detail
    data = samples["video"].read_bytes()
    part = uploader.get(f"/api/v1/assets/{vid['id']}/content", HTTP_RANGE="bytes=10-99")
    assert part.status_code == 206 and part["Content-Range"] == f"bytes 10-99/{len(data)}"
    assert b"".join(part.streaming_content) == data[10:100]
    assert uploader.get(f"/api/v1/assets/{vid['id']}/content", HTTP_RANGE="bytes=999999999-").status_code == 416
    # uploaders cannot delete; admins can, and the blob goes with the asset
    assert uploader.delete(f"/api/v1/assets/{vid['id']}/").status_code == 403
    key = MediaAsset.objects.get(pk=vid["id"]).storage_key
    assert admin.delete(f"/api/v1/assets/{vid['id']}/").status_code == 204
    assert not MediaAsset.objects.filter(pk=vid["id"]).exists() and not default_storage.exists(key)
    assert AuditEvent.objects.filter(verb="asset.deleted", target_id=vid["id"]).exists()


def test_uploaders_do_not_see_each_others_assets(uploader, samples):
    _upload(uploader, samples["image"])
    other = APIClient()
    other.force_authenticate(_user("up2", "uploader"))
    assert other.get("/api/v1/assets/").json()["count"] == 0
