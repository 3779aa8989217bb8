"""Stage transitions on real PostgreSQL, without a worker: claims and concurrent completions.

``send`` (the broker publish) is replaced by a recorder so the test sees exactly which stage
messages the transitions would publish, and when.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.db import transaction

from apps.assets.models import MediaAsset
from apps.pipeline import services
from apps.pipeline.models import Job, StageRun
from tests.conftest import in_threads
from tests.pipeline.helpers import ingest_text, stage

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    sent: list[str] = []
    lock = threading.Lock()

    def record(stage: str, queue: str, run_id: int, countdown: float | None = None,
               priority: int | None = None) -> None:
        with lock:
            sent.append(stage)

    monkeypatch.setattr(services, "send", record)
    return sent


def _run_to_done(asset: MediaAsset, name: str) -> None:
    run = stage(asset, name)
    assert services.claim(run.pk, "test-worker", f"task-{name}") is not None
    with transaction.atomic():
        assert services.complete(run.pk, f"task-{name}", {"stage": name})


def test_claim_returns_run_and_asset_in_one_statement(isolated_storage, tmp_path, published,
                                                      django_assert_num_queries):
    asset = ingest_text(tmp_path, "A short note about the harbour.", faults=None)
    assert published == ["text_extract"]
    run = stage(asset, "text_extract")
    with django_assert_num_queries(1):
        got = services.claim(run.pk, "test-worker:1", "task-1")
    assert got is not None
    assert (got.run.pk, got.run.status, got.run.attempts, got.run.worker) == (run.pk, "running", 1, "test-worker:1")
    assert got.run.needs == [] and isinstance(got.run.summary, dict)  # JSON columns decoded like the ORM does
    assert got.asset.pk == asset.pk and got.asset.status == "processing" and got.asset.metadata == {}
    assert MediaAsset.objects.get(pk=asset.pk).status == "processing"
    # held by a live worker, then finished: both make a redelivered message a no-op
    assert services.claim(run.pk, "test-worker:2", "task-2") is None
    with transaction.atomic():
        assert services.complete(run.pk, "task-1", {})
    assert services.claim(run.pk, "test-worker:2", "task-2") is None
    assert StageRun.objects.get(pk=run.pk).attempts == 1


def test_siblings_finishing_together_queue_their_join_once(isolated_storage, tmp_path, published):
    """Three stages that ``moderate`` needs complete in overlapping transactions: it is queued once.

    Each transaction stays open a moment after marking its stage done, so without the job lock
    every one of them would see its siblings still running and none would queue ``moderate``.
    """
    asset = ingest_text(tmp_path, "Boats, music and food stalls at the harbour festival.")
    _run_to_done(asset, "text_extract")
    siblings = ["language", "text_embed", "text_flags"]
    assert sorted(published) == sorted(["text_extract", *siblings])
    runs = {name: stage(asset, name) for name in siblings}
    for name, run in runs.items():
        assert services.claim(run.pk, "test-worker", f"task-{name}") is not None
    start = threading.Barrier(len(siblings))
    errors: list[BaseException] = []

    def finish(name: str) -> None:
        try:
            start.wait()
            with transaction.atomic():
                assert services.complete(runs[name].pk, f"task-{name}", {})
                time.sleep(0.3)
        except BaseException as e:  # reported by the main thread
            errors.append(e)

    in_threads(finish, [(n,) for n in siblings])
    assert not errors, errors
    assert stage(asset, "moderate").status == "queued"
    assert published.count("moderate") == 1
    _run_to_done(asset, "moderate")
    asset.refresh_from_db()
    job = Job.objects.get(asset=asset)
    assert (asset.status, job.status) == ("ready", "done") and asset.processed_at is not None


def test_skip_dispatches_successors(isolated_storage, tmp_path, published: list[Any]):
    asset = ingest_text(tmp_path, "Nothing much to say.")
    run = stage(asset, "text_extract")
    assert services.claim(run.pk, "test-worker", "task-x") is not None
    assert services.skip(run.pk, "task-x", "nothing to extract")
    assert stage(asset, "text_extract").status == "skipped"
    assert {stage(asset, n).status for n in ("language", "text_embed", "text_flags")} == {"queued"}


def test_dispatch_of_a_deleted_job_is_a_no_op(isolated_storage, tmp_path, published):
    import uuid

    with transaction.atomic():
        assert services.dispatch_ready(uuid.uuid4()) == 0
    assert published == []
