"""Takedown and ``gc`` with blobs and derived files in a real S3 server (SeaweedFS)."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.urls import reverse

from apps.assets import storage
from tests.assets.clients import client_as
from tests.assets.s3 import SeaweedS3, seaweedfs_fixture, use_as_default_storage  # noqa: F401  (fixture `seaweedfs`)
from tests.assets.test_takedown import _upload, write_derived

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def s3(seaweedfs: SeaweedS3, settings, tmp_path) -> SeaweedS3:
    return use_as_default_storage(seaweedfs, settings, tmp_path)


def test_delete_removes_the_object_and_every_derived_object(s3):
    up, admin = client_as("up1", "uploader"), client_as("adm", "admin")
    body = _upload(up, b"a text to take down from s3\n")
    keep = _upload(up, b"a text that stays on s3\n")
    derived = write_derived(body["sha256"])
    kept = write_derived(keep["sha256"])
    assert all(s3.head(k) for k in derived)
    assert admin.delete(reverse("asset-detail", args=[body["id"]])).status_code == 204
    sha = keep["sha256"]
    assert s3.keys() == sorted([storage.blob_key(sha), *kept])


def test_gc_finds_and_removes_orphans_in_the_bucket(s3, capsys):
    up = client_as("up1", "uploader")
    body = _upload(up, b"referenced on s3\n")
    kept = sorted([storage.blob_key(body["sha256"]), *write_derived(body["sha256"])])
    orphan = "ef" * 32
    default_storage.save(storage.blob_key(orphan), ContentFile(b"o" * 64))
    orphans = [storage.blob_key(orphan), *write_derived(orphan)]
    call_command("gc", "--dry-run", "--min-age", "0")
    out = capsys.readouterr().out
    assert all(k in out for k in orphans) and f"would remove {len(orphans)} orphan file(s)" in out
    assert s3.keys() == sorted(kept + orphans)
    call_command("gc", "--min-age", "0")
    assert f"removed {len(orphans)} orphan file(s)" in capsys.readouterr().out
    assert s3.keys() == kept
