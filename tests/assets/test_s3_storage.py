"""Ingestion through the API with blobs in a real S3 server (SeaweedFS), as ``MEDIAINTEL_STORAGE=s3`` runs."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from rest_framework.test import APIClient

from apps.assets.models import MediaAsset
from apps.audit.models import AuditEvent
from tests import media
from tests.assets.clients import client_as
from tests.assets.s3 import SeaweedS3, seaweedfs_fixture, use_as_default_storage  # noqa: F401  (fixture `seaweedfs`)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def s3(seaweedfs: SeaweedS3, settings, tmp_path) -> SeaweedS3:
    """``default_storage`` is S3Storage on the SeaweedFS bucket (emptied first); MEDIA_ROOT stays unused."""
    return use_as_default_storage(seaweedfs, settings, tmp_path)





def _upload(client: APIClient, path: Path, name: str | None = None):
    data = io.BytesIO(path.read_bytes())
    data.name = name or path.name
    return client.post("/api/v1/assets/", {"file": data}, format="multipart")


@pytest.fixture
def samples(tmp_path):
    return {
        "video": media.make_video(tmp_path / "clip.mp4", (("red", 1.0), ("noise", 1.0)), size=(320, 240)),
        "image": media.make_image(tmp_path / "photo.jpg", "S3", background="noise"),
    }


def test_default_storage_is_s3(s3):
    from storages.backends.s3 import S3Storage

    assert isinstance(default_storage, S3Storage)
    assert default_storage.bucket_name == s3.bucket


def test_video_and_image_are_stored_by_content_in_the_bucket(s3, samples, tmp_path, settings, _no_pipeline):
    uploader = client_as("up1", "uploader")
    for name, kind in (("video", "video"), ("image", "image")):
        data = samples[name].read_bytes()
        r = _upload(uploader, samples[name])
        assert r.status_code == 201, r.json()
        body = r.json()
        assert body["kind"] == kind and body["size"] == len(data)
        sha = body["sha256"]
        key = f"blobs/{sha[:2]}/{sha[2:4]}/{sha}"
        assert MediaAsset.objects.get(pk=body["id"]).storage_key == key
        head = s3.head(key)
        assert head is not None and head["ContentLength"] == len(data)
        assert s3.client().get_object(Bucket=s3.bucket, Key=key)["Body"].read() == data
    assert len(s3.keys("blobs/")) == 2 and s3.keys() == s3.keys("blobs/")
    assert not Path(settings.MEDIA_ROOT).exists()  # nothing went to the local blob store
    assert len(_no_pipeline) == 2


def test_same_bytes_twice_give_one_object(s3, samples):
    uploader = client_as("up1", "uploader")
    first = _upload(uploader, samples["image"])
    second = _upload(uploader, samples["image"], name="renamed.jpg")
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["duplicate"] is True and second.json()["id"] == first.json()["id"]
    sha = first.json()["sha256"]
    assert s3.keys() == [f"blobs/{sha[:2]}/{sha[2:4]}/{sha}"]
    assert MediaAsset.objects.count() == 1


def test_content_with_range_is_served_from_s3_by_ranged_gets(s3, samples, monkeypatch):
    """Range requests read only the range: the whole-object download of S3File is never used."""
    from storages.backends.s3 import S3File

    def no_full_download(self):  # S3File.file: downloads the whole object into memory
        raise AssertionError("the content endpoint downloaded the whole object")

    uploader = client_as("up1", "uploader")
    vid = _upload(uploader, samples["video"]).json()
    data = samples["video"].read_bytes()
    url = f"/api/v1/assets/{vid['id']}/content"
    monkeypatch.setattr(S3File, "file", property(no_full_download))

    part = uploader.get(url, HTTP_RANGE="bytes=10-99")
    assert part.status_code == 206 and part["Content-Range"] == f"bytes 10-99/{len(data)}"
    assert part["Content-Length"] == "90" and b"".join(part.streaming_content) == data[10:100]
    tail = uploader.get(url, HTTP_RANGE="bytes=-100")
    assert tail.status_code == 206 and b"".join(tail.streaming_content) == data[-100:]
    open_end = uploader.get(url, HTTP_RANGE=f"bytes={len(data) - 5}-")
    assert b"".join(open_end.streaming_content) == data[-5:]
    whole = uploader.get(url)
    assert whole.status_code == 200 and whole["Accept-Ranges"] == "bytes"
    assert b"".join(whole.streaming_content) == data
    assert uploader.get(url, HTTP_RANGE=f"bytes={len(data)}-").status_code == 416


def test_admin_delete_removes_the_object(s3, samples):
    uploader, admin = client_as("up1", "uploader"), client_as("adm", "admin")
    vid = _upload(uploader, samples["video"]).json()
    img = _upload(uploader, samples["image"]).json()
    key = MediaAsset.objects.get(pk=vid["id"]).storage_key
    assert s3.head(key) is not None
    assert uploader.delete(f"/api/v1/assets/{vid['id']}/").status_code == 403
    assert s3.head(key) is not None
    assert admin.delete(f"/api/v1/assets/{vid['id']}/").status_code == 204
    assert s3.head(key) is None
    assert s3.keys() == [MediaAsset.objects.get(pk=img["id"]).storage_key]  # the other blob stays
    assert AuditEvent.objects.filter(verb="asset.deleted", target_id=vid["id"]).exists()


def test_rejected_files_leave_no_object(s3, samples, tmp_path):
    uploader = client_as("up1", "uploader")
    truncated = media.truncate_copy(samples["image"], tmp_path / "cut.jpg", keep=0.4)
    cut_video = media.truncate_copy(samples["video"], tmp_path / "cut.mp4", keep=0.5)
    exe = tmp_path / "setup.mp4"
    exe.write_bytes(b"MZ\x90\x00" + bytes(range(256)) * 8)
    poly = tmp_path / "poly.jpg"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("payload.html", "<script>alert(1)</script>")
    poly.write_bytes(samples["image"].read_bytes() + buf.getvalue())
    for path, status, code in ((truncated, 422, "corrupt"), (cut_video, 422, "corrupt"),
                               (exe, 415, "unsupported_type"), (poly, 422, "polyglot")):
        r = _upload(uploader, path)
        assert r.status_code == status and r.json()["error"]["code"] == code, r.content
    assert s3.keys() == []
    assert MediaAsset.objects.count() == 0
    assert AuditEvent.objects.filter(verb="asset.rejected").count() == 4
