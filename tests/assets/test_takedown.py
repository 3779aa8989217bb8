"""Deleting an asset removes every byte derived from it; ``gc`` removes what nothing references.

Derived files are written exactly where the stages write them (``workers.tasks.decode.derived_key``:
keyframe JPEGs, the 16 kHz audio track, the extracted text). Local storage here; the same on
S3 in ``test_takedown_s3.py``.
"""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection
from django.urls import reverse
from rest_framework.test import APIClient

from apps.assets import storage
from apps.assets.models import MediaAsset
from tests.assets.clients import client_as
from tests.conftest import wait_for
from workers.tasks.decode import derived_key

pytestmark = pytest.mark.django_db(transaction=True)

DERIVED = ("keyframes/00000.jpg", "keyframes/00001.jpg", "audio16k.wav", "text.json")




def _upload(client: APIClient, data: bytes, name: str = "a.txt") -> dict:
    f = io.BytesIO(data)
    f.name = name
    r = client.post(reverse("asset-list"), {"file": f}, format="multipart")
    assert r.status_code in (200, 201), r.content
    return r.json()


def write_derived(sha: str) -> list[str]:
    """What the keyframes, audio and text_extract stages store for a content."""
    keys = [derived_key(sha, name) for name in DERIVED]
    for key in keys:
        default_storage.save(key, ContentFile(b"derived bytes of " + key.encode()))
    return keys


def all_keys() -> list[str]:
    return sorted(k for prefix in ("blobs", "derived") for k, _ in storage.walk(prefix))


def test_delete_removes_the_blob_and_every_derived_file():
    up, admin = client_as("up1", "uploader"), client_as("adm", "admin")
    body = _upload(up, b"a text to take down\n")
    keys = write_derived(body["sha256"])
    other = _upload(up, b"another text that stays\n")
    kept = write_derived(other["sha256"])
    assert admin.delete(reverse("asset-detail", args=[body["id"]])).status_code == 204
    assert all_keys() == sorted([MediaAsset.objects.get().storage_key, *kept])
    assert not any(default_storage.exists(k) for k in keys)


def test_shared_content_stays_until_the_last_asset_holding_it_is_deleted():
    alice, bob, admin = client_as("alice", "uploader"), client_as("bob", "uploader"), client_as("adm", "admin")
    a, b = _upload(alice, b"same bytes\n"), _upload(bob, b"same bytes\n")
    keys = write_derived(a["sha256"])
    admin.delete(reverse("asset-detail", args=[a["id"]]))
    assert all(default_storage.exists(k) for k in keys)
    assert default_storage.exists(MediaAsset.objects.get(pk=b["id"]).storage_key)
    admin.delete(reverse("asset-detail", args=[b["id"]]))
    assert all_keys() == []


def test_delete_evicts_the_content_from_every_workers_cache(start_worker, tmp_path, isolated_storage):
    caches = [tmp_path / "cache-1", tmp_path / "cache-2"]
    for i, cache in enumerate(caches):
        start_worker(role="cpu", concurrency=1, name=f"evict{i}", env={"MEDIAINTEL_WORKER_CACHE": str(cache)})
    up, admin = client_as("up1", "uploader"), client_as("adm", "admin")
    body = _upload(up, b"cached on two worker hosts\n")
    keep = _upload(up, b"cached and still wanted\n")
    for cache in caches:
        (cache / "blobs").mkdir(parents=True)
        (cache / "blobs" / body["sha256"]).write_bytes(b"copy")
        (cache / "blobs" / keep["sha256"]).write_bytes(b"copy")
    from mediaintel.celery import app

    wait_for(lambda: len(app.control.ping(timeout=1.0) or []) >= 2, timeout=90, what="both workers up")
    admin.delete(reverse("asset-detail", args=[body["id"]]))
    wait_for(lambda: not any((c / "blobs" / body["sha256"]).exists() for c in caches), timeout=30,
             what="the cached copies to be evicted")
    assert all((c / "blobs" / keep["sha256"]).exists() for c in caches)


@pytest.fixture
def refused_inserts():
    """PostgreSQL itself refuses new asset rows (a trigger), as a failing database would."""
    table = MediaAsset._meta.db_table
    with connection.cursor() as c:
        c.execute("CREATE FUNCTION test_refuse_insert() RETURNS trigger AS $$ BEGIN "
                  "RAISE EXCEPTION 'refused by the test'; END $$ LANGUAGE plpgsql")
        c.execute(f"CREATE TRIGGER test_refuse BEFORE INSERT ON {table} FOR EACH ROW "
                  "EXECUTE FUNCTION test_refuse_insert()")
    yield
    with connection.cursor() as c:
        c.execute(f"DROP TRIGGER test_refuse ON {table}")
        c.execute("DROP FUNCTION test_refuse_insert()")


@pytest.fixture
def refused_selects():
    """The asset table is unreadable for this connection (revoked in PostgreSQL itself)."""
    table = MediaAsset._meta.db_table
    with connection.cursor() as c:
        c.execute("CREATE ROLE test_no_assets")
        c.execute("GRANT ALL ON SCHEMA public TO test_no_assets")
        c.execute("SET ROLE test_no_assets")
    yield table
    with connection.cursor() as c:
        c.execute("RESET ROLE")
        c.execute("REVOKE ALL ON SCHEMA public FROM test_no_assets")
        c.execute("DROP ROLE test_no_assets")


def test_a_failed_row_write_after_the_blob_write_leaves_no_blob(refused_inserts):
    up = client_as("up1", "uploader")
    f = io.BytesIO(b"bytes whose row never commits\n")
    f.name = "a.txt"
    with pytest.raises(DatabaseError, match="refused by the test"):
        up.post(reverse("asset-list"), {"file": f}, format="multipart")
    assert all_keys() == []


def test_gc_lists_then_removes_orphans_and_keeps_what_assets_reference(capsys, tmp_path, settings):
    settings.MEDIAINTEL_WORKER_CACHE = str(tmp_path / "cache")
    up = client_as("up1", "uploader")
    body = _upload(up, b"a referenced text\n")
    kept = [MediaAsset.objects.get().storage_key, *write_derived(body["sha256"])]
    orphan_sha = "ab" * 32
    default_storage.save(storage.blob_key(orphan_sha), ContentFile(b"x" * 100))
    orphans = [storage.blob_key(orphan_sha), *write_derived(orphan_sha)]
    cache = Path(settings.MEDIAINTEL_WORKER_CACHE) / "blobs"
    cache.mkdir(parents=True)
    (cache / orphan_sha).write_bytes(b"y" * 10)
    (cache / body["sha256"]).write_bytes(b"z")
    old = time.time() - 7200
    for key in orphans + kept:
        os.utime(default_storage.path(key), (old, old))
    for p in cache.iterdir():
        os.utime(p, (old, old))

    call_command("gc", "--dry-run")
    out = capsys.readouterr().out
    assert all(k in out for k in orphans) and not any(k in out for k in kept)
    assert str(cache / orphan_sha) in out and f"would remove {len(orphans) + 1} orphan file(s)" in out
    assert all_keys() == sorted(orphans + kept)  # nothing deleted

    call_command("gc")
    out = capsys.readouterr().out
    assert f"removed {len(orphans) + 1} orphan file(s)" in out
    assert all_keys() == sorted(kept)
    assert sorted(p.name for p in cache.iterdir()) == [body["sha256"]]


def test_gc_keeps_young_files_of_ingests_in_flight(capsys):
    default_storage.save(storage.blob_key("cd" * 32), ContentFile(b"being ingested"))
    call_command("gc")
    assert "removed 0 orphan file(s)" in capsys.readouterr().out
    assert default_storage.exists(storage.blob_key("cd" * 32))


def test_gc_exits_non_zero_with_a_message_on_bad_arguments():
    with pytest.raises(CommandError, match="min-age"):
        call_command("gc", "--min-age", "-1")


def test_gc_refuses_with_a_message_when_the_asset_table_cannot_be_read(refused_selects):
    with pytest.raises(CommandError, match="cannot read the assets"):
        call_command("gc", "--dry-run")
