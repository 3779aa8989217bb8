"""The pipeline with real worker processes, Redis and PostgreSQL: happy path and failure paths."""

from __future__ import annotations

import signal

import pytest
from django.core.management import call_command

from apps.assets.models import MediaAsset
from apps.insights.models import Language, TextChunk, TextSpanFlag
from apps.pipeline.models import DeadLetter, StageRun
from tests.pipeline.helpers import ingest_text, stage, wait_stage, wait_status

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

TEXT = ("The harbour festival opens on Saturday with boats, music and food stalls.\n\n"
        "Some visitor wrote: you are a stupid idiot and I will kill you.\n")


def test_text_asset_is_processed_to_ready(start_worker, isolated_storage, tmp_path):
    start_worker()
    asset = ingest_text(tmp_path, TEXT)
    wait_status(asset, {"ready", "failed"})
    assert asset.status == "ready", list(StageRun.objects.filter(asset=asset).values("stage", "status",
                                                                                       "error_message"))
    statuses = dict(StageRun.objects.filter(asset=asset).values_list("stage", "status"))
    assert statuses == {"text_extract": "done", "language": "done", "text_embed": "done", "text_flags": "done",
                        "moderate": "done"}
    chunks = list(TextChunk.objects.filter(asset=asset))
    assert chunks and all(c.embedding is not None and len(c.embedding) == 384 for c in chunks)
    assert all(TEXT[c.char_start:c.char_end] == c.text for c in chunks)
    cats = set(TextSpanFlag.objects.filter(asset=asset).values_list("category", flat=True))
    assert {"insult", "threat"} <= cats
    assert Language.objects.get(asset=asset, source="text").language == "en"
    # a threat in the text puts the asset in front of a human under the default policy
    from apps.moderation.models import ReviewItem

    item = ReviewItem.objects.get(asset=asset)
    assert item.state == "open" and "harassment/threat" in item.categories
    assert asset.moderation_state == "in_review"
    assert all(r.worker and r.attempts == 1 for r in StageRun.objects.filter(asset=asset))


def test_transient_failure_retries_then_succeeds(start_worker, isolated_storage, tmp_path):
    start_worker()
    asset = ingest_text(tmp_path, "Plain words about the weather.", faults={"text_extract": {"transient": 2}})
    wait_status(asset, {"ready", "failed"})
    run = stage(asset, "text_extract")
    assert (asset.status, run.status, run.attempts) == ("ready", "done", 3)
    assert not DeadLetter.objects.exists()


def test_permanent_failure_is_dead_then_replayed(start_worker, isolated_storage, tmp_path, capsys):
    start_worker()
    asset = ingest_text(tmp_path, "A calm sentence.", faults={"text_extract": {"permanent": True}})
    wait_status(asset, {"ready", "failed"})
    run = stage(asset, "text_extract")
    assert (asset.status, run.status, run.attempts) == ("failed", "dead", 1)
    assert "injected permanent fault" in run.error_message and run.traceback
    dl = DeadLetter.objects.get(stage_run=run)
    assert stage(asset, "language").status == "pending"  # blocked behind the dead stage, not lost
    call_command("dlq", "list")
    assert str(dl.pk) in capsys.readouterr().out
    MediaAsset.objects.filter(pk=asset.pk).update(metadata={})  # the cause is fixed
    call_command("dlq", "replay", str(dl.pk))
    wait_status(asset, {"ready"})
    dl.refresh_from_db()
    assert dl.replayed_at is not None and stage(asset, "text_extract").status == "done"


def test_duplicate_delivery_of_a_finished_stage_changes_nothing(start_worker, isolated_storage, tmp_path):
    from apps.pipeline.services import send

    start_worker()
    asset = ingest_text(tmp_path, TEXT)
    wait_status(asset, {"ready"})
    before = {r.stage: (r.attempts, r.finished_at) for r in StageRun.objects.filter(asset=asset)}
    n_chunks = TextChunk.objects.filter(asset=asset).count()
    run = stage(asset, "text_embed")
    for _ in range(3):
        send("text_embed", run.queue, run.pk)
    import time

    time.sleep(4)
    after = {r.stage: (r.attempts, r.finished_at) for r in StageRun.objects.filter(asset=asset)}
    assert after == before and TextChunk.objects.filter(asset=asset).count() == n_chunks


def test_sigkilled_worker_mid_stage_completes_exactly_once(start_worker, beat, isolated_storage, tmp_path):
    w1 = start_worker(name="victim", concurrency=1)
    asset = ingest_text(tmp_path, TEXT, faults={"text_embed": {"sleep_first": 60}})
    run = wait_stage(asset, "text_embed", {"running"}, timeout=90)
    assert run.attempts == 1
    w1.kill(signal.SIGKILL)
    start_worker(name="rescuer", concurrency=1)
    wait_status(asset, {"ready", "failed"}, timeout=120, tick=beat)
    run = stage(asset, "text_embed")
    assert (asset.status, run.status, run.attempts) == ("ready", "done", 2)
    assert "rescuer" in run.worker or run.worker  # taken over by the live worker
    texts = list(TextChunk.objects.filter(asset=asset).values_list("source", "char_start"))
    assert len(texts) == len(set(texts))  # no insight row duplicated
