"""Liveness and readiness against real services: ``/livez`` touches nothing, ``/readyz`` (and its
alias ``/healthz``) checks the database, the broker and storage without ever writing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from tests.assets.s3 import SeaweedS3, seaweedfs_fixture  # noqa: F401  (the session fixture `seaweedfs`)

pytestmark = pytest.mark.django_db

CLOSED_BROKER = "redis://127.0.0.1:1/0"  # nothing listens on port 1


def _local_storage(settings, root: Path) -> None:
    settings.MEDIA_ROOT = root
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "apps.assets.storage.DurableFileSystemStorage", "OPTIONS": {"location": str(root)}}}


def _tree(root: Path) -> dict[str, int]:
    """Every path under ``root`` (itself included) with its mtime: any write changes this."""
    state = {".": root.stat().st_mtime_ns}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            state[str(p.relative_to(root))] = p.stat().st_mtime_ns
    return state


def test_livez_answers_without_any_io(client, settings, tmp_path, django_assert_num_queries):
    settings.BROKER_URL = CLOSED_BROKER
    _local_storage(settings, tmp_path / "missing")
    with django_assert_num_queries(0):
        r = client.get(reverse("livez"))
    assert r.status_code == 200, r.content
    assert r.json() == {"status": "ok"}
    assert not (tmp_path / "missing").exists()


def test_readyz_reports_each_dependency(client, settings, isolated_storage, empty_broker):
    r = client.get(reverse("readyz"))
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["status"] == "ok" and body["failing"] == []
    # the dependencies, and the pipeline's non-critical check registered by its app
    assert set(body["checks"]) == {"database", "broker", "storage", "queues"} and body["warnings"] == []
    assert body["checks"]["database"]["pgvector"].startswith("0.8")
    assert all(c["ok"] and "ms" in c for c in body["checks"].values())


def test_readyz_is_503_naming_an_unreachable_broker(client, settings, isolated_storage):
    settings.BROKER_URL = CLOSED_BROKER
    r = client.get(reverse("readyz"))
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "unavailable"
    assert body["failing"] == ["broker"]
    assert body["checks"]["broker"]["ok"] is False and body["checks"]["broker"]["error"]
    assert body["checks"]["database"]["ok"] is True and body["checks"]["storage"]["ok"] is True


def test_readyz_is_503_naming_an_unusable_media_root(client, settings, tmp_path):
    (tmp_path / "a-file").write_bytes(b"x")
    _local_storage(settings, tmp_path / "a-file" / "media")
    r = client.get(reverse("readyz"))
    assert r.status_code == 503
    assert r.json()["failing"] == ["storage"]
    assert "a-file" in r.json()["checks"]["storage"]["error"]


def test_readyz_accepts_a_media_root_the_first_upload_will_create(client, settings, tmp_path):
    _local_storage(settings, tmp_path / "fresh" / "media")
    r = client.get(reverse("readyz"))
    assert r.status_code == 200, r.content
    assert r.json()["checks"]["storage"]["exists"] is False
    assert not (tmp_path / "fresh").exists()


def test_readiness_and_healthz_never_write_to_local_storage(client, isolated_storage):
    (isolated_storage / "blobs").mkdir()
    before = _tree(isolated_storage)
    for name in ("readyz", "healthz", "readyz"):
        r = client.get(reverse(name))
        assert r.status_code == 200, r.content
    assert _tree(isolated_storage) == before


def test_healthz_is_readyz(client, settings, isolated_storage):
    assert set(client.get(reverse("healthz")).json()["checks"]) == {"database", "broker", "storage", "queues"}
    settings.BROKER_URL = CLOSED_BROKER
    r = client.get(reverse("healthz"))
    assert r.status_code == 503 and r.json()["failing"] == ["broker"]


def test_readyz_checks_the_s3_bucket_without_writing(client, settings, seaweedfs: SeaweedS3, tmp_path):
    seaweedfs.empty()
    settings.MEDIA_ROOT = tmp_path / "unused"
    settings.STORAGES = {**settings.STORAGES, "default": seaweedfs.storage()}
    r = client.get(reverse("readyz"))
    assert r.status_code == 200, r.content
    assert r.json()["checks"]["storage"]["bucket"] == seaweedfs.bucket
    assert seaweedfs.keys() == []

    missing = seaweedfs.storage()
    missing["OPTIONS"] = {**missing["OPTIONS"], "bucket_name": "no-such-bucket"}
    settings.STORAGES = {**settings.STORAGES, "default": missing}
    r = client.get(reverse("readyz"))
    assert r.status_code == 503
    assert r.json()["failing"] == ["storage"]


@pytest.mark.parametrize("name", ["livez", "readyz", "healthz"])
def test_probes_are_exempt_from_the_https_redirect(settings, isolated_storage, name):
    settings.SECURE_SSL_REDIRECT = True
    r = Client().get(reverse(name))  # plain HTTP, as the kubelet probes a pod
    assert r.status_code == 200, (r.status_code, r.headers.get("Location"))
