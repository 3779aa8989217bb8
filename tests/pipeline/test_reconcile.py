"""The reconciler and what an operator sees of stuck work, on the real database and broker."""

from __future__ import annotations

from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from rest_framework.test import APIClient

from apps.audit.models import AuditEvent
from apps.pipeline.models import DeadLetter, ReconcilerMark, StageRun, WorkerPresence
from apps.pipeline.reconcile import reconcile
from tests.conftest import wait_for
from tests.pipeline.helpers import ingest_text, stage

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def broker() -> redis.Redis:
    r = redis.Redis.from_url(settings.BROKER_URL)
    r.flushdb()
    return r


def _ago(seconds: float):
    return timezone.now() - timedelta(seconds=seconds)


def _watching() -> None:
    """As if the reconciler had run a moment ago (so this pass judges leases)."""
    ReconcilerMark.objects.update_or_create(name="reconciler", defaults={"last_run_at": timezone.now()})


def test_a_queued_stage_whose_message_is_lost_is_sent_again(tmp_path, isolated_storage, broker):
    asset = ingest_text(tmp_path, "Words about the weather.")
    run = stage(asset, "text_extract")
    assert run.status == "queued" and broker.llen("decode") == 1
    broker.delete("decode")  # the message is gone (acked while the database was out, say)
    StageRun.objects.filter(pk=run.pk).update(queued_at=_ago(settings.MEDIAINTEL_STAGE_REDISPATCH_AFTER + 1))

    dry = reconcile(dry_run=True)
    assert [(a.stage, a.action) for a in dry.actions] == [("text_extract", "resend")]
    assert broker.llen("decode") == 0  # a dry run changes nothing

    report = reconcile()
    assert report.count("resend") == 1 and broker.llen("decode") == 1
    assert stage(asset, "text_extract").queued_at > timezone.now() - timedelta(seconds=5)
    assert reconcile().actions == []  # re-sent once per bound, not on every pass


def test_a_backlog_is_not_taken_for_lost_messages(tmp_path, isolated_storage, broker):
    asset = ingest_text(tmp_path, "Words about the sea.")
    StageRun.objects.filter(asset=asset).update(queued_at=_ago(600))
    assert broker.llen("decode") == 1  # still in its queue: workers are just behind
    assert reconcile().actions == [] and broker.llen("decode") == 1


def test_leases_are_judged_only_by_a_reconciler_that_has_been_watching(tmp_path, isolated_storage, broker):
    asset = ingest_text(tmp_path, "Words about the hills.")
    run = stage(asset, "text_extract")
    StageRun.objects.filter(pk=run.pk).update(status="running", attempts=1, task_id="t-1",
                                              heartbeat_at=_ago(settings.MEDIAINTEL_STAGE_LEASE * 3))
    ReconcilerMark.objects.all().delete()  # beat (or the database) was down: nobody watched
    first = reconcile()
    assert not first.judged_leases and stage(asset, "text_extract").status == "running"
    second = reconcile()  # a moment later: a live worker would have renewed its heartbeat by now
    assert second.judged_leases and [a.action for a in second.actions] == ["retry"]
    run = stage(asset, "text_extract")
    assert (run.status, run.attempts) == ("retrying", 1) and "worker lost" in run.error_message


def test_a_worker_lost_on_the_last_attempt_ends_dead_with_a_dead_letter(tmp_path, isolated_storage, broker):
    asset = ingest_text(tmp_path, "Words about the moon.")
    run = stage(asset, "text_extract")
    StageRun.objects.filter(pk=run.pk).update(status="running", attempts=3, max_attempts=3, task_id="t-3",
                                              worker="host:123", heartbeat_at=_ago(60))
    _watching()
    report = reconcile()
    assert [a.action for a in report.actions] == ["dead"]
    run = stage(asset, "text_extract")
    assert run.status == "dead" and run.error_class == "WorkerLost"
    dl = DeadLetter.objects.get(stage_run=run)
    assert "worker lost on attempt 3 of 3" in dl.error and "host:123" in dl.error
    asset.refresh_from_db()
    assert asset.status == "failed"
    assert AuditEvent.objects.filter(verb="stage.dead", target_id=str(asset.pk)).exists()


def test_claim_never_takes_over_a_stage_whose_last_attempt_died(tmp_path, isolated_storage, broker):
    from apps.pipeline.services import claim

    asset = ingest_text(tmp_path, "Words about the stars.")
    run = stage(asset, "text_extract")
    StageRun.objects.filter(pk=run.pk).update(status="running", attempts=3, max_attempts=3, heartbeat_at=_ago(60))
    assert claim(run.pk, "w:1", "t-new") is None
    StageRun.objects.filter(pk=run.pk).update(attempts=2)
    assert claim(run.pk, "w:1", "t-new") is not None  # attempts left: taken over


def test_reconcile_command_dry_run_then_for_real(tmp_path, isolated_storage, broker, capsys):
    asset = ingest_text(tmp_path, "Words about the lake.")
    broker.delete("decode")
    StageRun.objects.filter(asset=asset).update(queued_at=_ago(120))
    call_command("pipeline", "reconcile", "--dry-run")
    out = capsys.readouterr().out
    assert "would resend" in out and "text_extract" in out and "would act on 1 stage(s)" in out
    call_command("pipeline", "reconcile")
    assert "acted on 1 stage(s)" in capsys.readouterr().out and broker.llen("decode") == 1


def test_reprocess_stuck_restarts_a_stalled_stage_and_refuses_the_old_holder(tmp_path, isolated_storage, broker,
                                                                             capsys):
    from apps.pipeline.services import complete

    asset = ingest_text(tmp_path, "Words about the river.")
    run = stage(asset, "text_extract")
    StageRun.objects.filter(pk=run.pk).update(status="running", attempts=1, task_id="old",
                                              heartbeat_at=_ago(settings.MEDIAINTEL_STAGE_LEASE + 5))
    call_command("reprocess", "--stuck", "--dry-run")
    assert f"{asset.pk}  text_extract" in capsys.readouterr().out
    call_command("reprocess", "--stuck")
    run = stage(asset, "text_extract")
    assert (run.status, run.attempts, run.task_id) == ("queued", 0, "")
    assert not complete(run.pk, "old", {})  # the late completion of the old holder is refused


def test_reprocess_refuses_an_invalid_asset_id_with_a_message():
    with pytest.raises(CommandError, match="not an asset id"):
        call_command("reprocess", "--all", "--asset", "not-a-uuid")
    with pytest.raises(CommandError, match="no such asset"):
        call_command("reprocess", "--all", "--asset", "00000000-0000-4000-8000-000000000000")


def test_stuck_work_is_visible_in_status_metrics_readiness_and_console(tmp_path, isolated_storage, broker,
                                                                       admin_user, capsys):
    asset = ingest_text(tmp_path, "Words about the forest.")
    StageRun.objects.filter(asset=asset).update(queued_at=_ago(120))  # queued, message still in its queue
    WorkerPresence.objects.all().delete()  # and no worker consumes it
    call_command("pipeline", "status")
    out = capsys.readouterr().out
    assert "1 stage(s) stalled" in out and "queue decode holds messages but no live worker consumes it" in out

    c = APIClient()
    body = c.get("/readyz").json()
    assert body["status"] == "degraded" and body["warnings"] == ["queues"]
    assert body["checks"]["queues"]["unconsumed"] == ["decode"] and body["checks"]["queues"]["stalled"] == {
        "decode": 1}
    metrics = c.get("/metrics").content.decode()
    assert 'mediaintel_stages_stalled{queue="decode"} 1.0' in metrics
    assert 'mediaintel_queue_consumers{queue="decode"} 0.0' in metrics

    c.force_login(admin_user)
    page = c.get("/console/jobs/").content.decode()
    assert "stalled since" in page
    WorkerPresence.objects.create(name="cpu@host", queues=["decode"], started_at=timezone.now(),
                                  seen_at=timezone.now())
    assert c.get("/readyz").json()["status"] == "ok"


def test_a_running_worker_announces_the_queues_it_consumes(start_worker):
    w = start_worker(name="presence", role="search", concurrency=1)
    row = wait_for(lambda: WorkerPresence.objects.filter(name__startswith="presence@").first(), timeout=60,
                   what="the worker's presence row")
    assert row.queues == ["search"] and row.seen_at > timezone.now() - timedelta(seconds=30)
    w.stop()
    assert not WorkerPresence.objects.filter(name=row.name).exists()  # a warm shutdown says goodbye


def test_an_overdue_retry_is_resent_once_per_bound_and_never_behind_a_backlog(tmp_path, isolated_storage, broker):
    asset = ingest_text(tmp_path, "Words about the bridge.")
    run = stage(asset, "text_extract")
    StageRun.objects.filter(pk=run.pk).update(status="retrying", attempts=1,
                                              next_attempt_at=_ago(settings.MEDIAINTEL_STAGE_LEASE + 5))
    assert broker.llen("decode") == 1  # the queue is busy (its first message is still there): a backlog
    assert reconcile().actions == []
    broker.delete("decode")  # the delayed message died with the worker holding it
    assert [a.action for a in reconcile().actions] == ["resend"] and broker.llen("decode") == 1
    broker.delete("decode")
    assert reconcile().actions == []  # not again before the re-dispatch bound


def test_one_pass_at_a_time_across_the_deployment(tmp_path, isolated_storage, broker):
    import psycopg

    from apps.pipeline.reconcile import _LOCK_KEY

    db = settings.DATABASES["default"]
    with psycopg.connect(host=db["HOST"], port=db["PORT"], user=db["USER"], dbname=db["NAME"]) as other:
        other.execute("SELECT pg_advisory_lock(%s)", [_LOCK_KEY])  # a pass running elsewhere
        assert reconcile().skipped == "another reconciler pass is running"
        other.execute("SELECT pg_advisory_unlock(%s)", [_LOCK_KEY])
    assert reconcile().skipped == ""
