"""A real worker on S3 storage keeps its blob cache within its bound, and the broadcast sweep
removes the copy of a deleted asset's blob (and keeps the others)."""

from __future__ import annotations

from pathlib import Path

import pytest

from apps.assets.actions import delete_asset
from apps.assets.services import ingest_local_file
from apps.audit.services import Actor
from tests.assets.s3 import SeaweedS3, seaweedfs_fixture  # noqa: F401  (the session fixture `seaweedfs`)
from tests.conftest import wait_for
from tests.pipeline.helpers import wait_stage, wait_status

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

DOC_BYTES = 5000


def _doc(tmp_path: Path, n: int) -> Path:
    p = tmp_path / f"doc-{n}.txt"
    head = f"Document {n}: the harbour ferry timetable, page {n}.\n"
    p.write_text(head + " " * (DOC_BYTES - len(head)))
    return p


def test_worker_blob_cache_stays_bounded_and_drops_deleted_assets(seaweedfs: SeaweedS3, start_worker, settings,
                                                                   tmp_path):
    from mediaintel.celery import app

    seaweedfs.empty()
    cache = tmp_path / "worker-cache" / "blobs"
    start_worker(concurrency=1, name="blobcache", env={
        **seaweedfs.env(), "MEDIAINTEL_WORKER_CACHE": str(cache.parent),
        "MEDIAINTEL_WORKER_CACHE_MAX_BYTES": str(int(DOC_BYTES * 2.5))})  # room for two originals
    settings.STORAGES = {**settings.STORAGES, "default": seaweedfs.storage()}

    assets = []
    for n in range(3):
        asset = ingest_local_file(_doc(tmp_path, n)).asset
        run = wait_stage(asset, "text_extract", {"done", "dead"}, timeout=180)
        assert run.status == "done", run.error_message
        assets.append(asset)
    _, b, c = (x.sha256 for x in assets)

    def cached() -> set[str]:
        return {p.name for p in cache.iterdir() if not p.name.startswith(".")} if cache.exists() else set()

    # the oldest copy made room for the newest: the cache never holds more than its bound
    assert cached() == {b, c}
    assert sum((cache / n).stat().st_size for n in cached()) <= DOC_BYTES * 2.5

    for asset in assets:
        wait_status(asset, {"ready", "failed"}, timeout=300)
    delete_asset(assets[1], actor=Actor.system("test"))
    app.send_task("mediaintel.maintenance.sweep_blob_caches")  # what beat sends every few minutes
    wait_for(lambda: b not in cached(), timeout=60, what="the sweep to drop the deleted asset's copy")
    assert cached() == {c}
