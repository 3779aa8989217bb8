"""Dead-letter replay and discard (API, console, ``manage.py dlq``) and reprocessing (API, ``manage.py
reprocess``): each one audited action behind its entry points.

Each entry point must change the same state and leave exactly one audit record naming who did
it; the record and the change commit together (an audit write that fails undoes the change).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.pipeline import actions
from apps.pipeline.models import DeadLetter, Job, StageRun
from tests.audit_failure import undone
from tests.moderation.helpers import api, make_asset, make_user

# Not transactional: the replayed stage's message (published on commit) is never sent, so no broker
# is involved; what is checked is the state change and its audit record.
pytestmark = pytest.mark.django_db


def dead_letter() -> DeadLetter:
    asset = make_asset(title="note.txt")
    job = Job.objects.create(asset=asset, plan_version="t", status="failed", finished_at=timezone.now())
    StageRun.objects.create(job=job, asset=asset, stage="text_extract", key=f"{asset.pk}:te", engine="e",
                            engine_version="1", status="done", queue="cpu")
    run = StageRun.objects.create(job=job, asset=asset, stage="language", key=f"{asset.pk}:lang", engine="e",
                                  engine_version="1", status="dead", attempts=3, queue="cpu", needs=["text_extract"],
                                  error_class="RuntimeError", error_message="boom")
    return DeadLetter.objects.create(stage_run=run, task_name="mediaintel.stage.language", args=[run.pk],
                                     error_class="RuntimeError", error="boom", traceback="Traceback…")


def by_api(action: str, dl: DeadLetter) -> str:
    r = api(make_user("ada", "admin")).post(f"/api/v1/dead-letters/{dl.pk}/{action}/")
    assert r.status_code == 200, r.content
    return "ada"


def by_console(action: str, dl: DeadLetter) -> str:
    c = Client()
    c.force_login(make_user("ada", "admin"))
    assert c.post(f"/console/dead-letters/{dl.pk}/{action}/").status_code == 302
    return "ada"


def by_command(action: str, dl: DeadLetter) -> str:
    call_command("dlq", action, str(dl.pk))
    return "dlq-command"


ENTRY_POINTS = {"api": by_api, "console": by_console, "command": by_command}


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_replaying_a_dead_letter_reopens_the_stage_with_one_audit_record(entry: str) -> None:
    dl = dead_letter()
    actor = ENTRY_POINTS[entry]("replay", dl)
    dl.refresh_from_db()
    assert dl.replayed_at is not None and dl.stage_run.status in ("pending", "queued")
    assert Job.objects.get(pk=dl.stage_run.job_id).status == "running"
    [ev] = AuditEvent.objects.filter(verb="dlq.replayed", target_id=str(dl.pk))
    assert (ev.actor_label, ev.payload["sent"], ev.payload["stage"]) == (actor, True, "language")
    assert ev.payload["asset"] == str(dl.stage_run.asset_id)


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_discarding_a_dead_letter_marks_it_with_one_audit_record(entry: str) -> None:
    dl = dead_letter()
    actor = ENTRY_POINTS[entry]("discard", dl)
    dl.refresh_from_db()
    assert dl.discarded and dl.stage_run.status == "dead"
    [ev] = AuditEvent.objects.filter(verb="dlq.discarded", target_id=str(dl.pk))
    assert (ev.actor_label, ev.payload["stage"]) == (actor, "language")
    assert actions.discard_dead_letter(dl.pk, actor=ev_actor()) is False  # already discarded: nothing more
    assert AuditEvent.objects.filter(verb="dlq.discarded", target_id=str(dl.pk)).count() == 1


def ev_actor() -> Any:
    from apps.audit.services import Actor

    return Actor.system("test")


@pytest.mark.parametrize("action", [actions.replay_dead_letter, actions.discard_dead_letter])
def test_an_audit_write_that_fails_undoes_the_dead_letter_change(
        action: Callable[..., bool], monkeypatch: pytest.MonkeyPatch) -> None:
    dl = dead_letter()

    def broken(*a: Any, **k: Any) -> None:
        raise RuntimeError("audit store unavailable")

    monkeypatch.setattr(actions, "record", broken)
    with pytest.raises(RuntimeError):
        action(dl.pk, actor=ev_actor())
    dl.refresh_from_db()
    assert (dl.replayed_at, dl.discarded, dl.stage_run.status) == (None, False, "dead")
    assert Job.objects.get(pk=dl.stage_run.job_id).status == "failed"


def test_replaying_a_stage_that_is_no_longer_dead_is_a_409_in_the_error_envelope() -> None:
    dl = dead_letter()
    StageRun.objects.filter(pk=dl.stage_run_id).update(status="done")
    r = api(make_user("ada", "admin")).post(f"/api/v1/dead-letters/{dl.pk}/replay/")
    assert r.status_code == 409
    err = r.json()["error"]
    assert err["code"] == "not_dead" and "no longer dead" in err["message"]
    assert err["detail"]["dead_letter"]["id"] == dl.pk
    [ev] = AuditEvent.objects.filter(verb="dlq.replayed", target_id=str(dl.pk))
    assert ev.payload["sent"] is False


# ------------------------------------------------------------------ reprocess
def reprocess_by_api(asset: Any, fail: bool = False) -> Any:
    r = api(make_user("ada", "admin")).post(reverse("asset-reprocess", args=[asset.pk]),
                                            {"mode": "all", "stages": ["language"]}, format="json")
    if not fail:
        assert r.status_code == 202, r.content
    return r


def reprocess_by_command(asset: Any, fail: bool = False) -> None:
    call_command("reprocess", "--all", "--stage", "language", "--asset", str(asset.pk), stdout=io.StringIO())


REPROCESS_ENTRIES = {"api": (reprocess_by_api, "ada", "asset"), "command": (reprocess_by_command, "reprocess-command",
                                                                           "pipeline")}


@pytest.mark.parametrize("entry", REPROCESS_ENTRIES)
def test_reprocessing_starts_a_job_with_one_audit_record(entry: str) -> None:
    call, actor, target_type = REPROCESS_ENTRIES[entry]
    asset = make_asset(title="note.txt")
    call(asset)
    job = Job.objects.get(asset=asset)
    assert job.reason.endswith("-all")
    [ev] = AuditEvent.objects.filter(verb="pipeline.reprocessed")
    assert (ev.actor_label, ev.target_type, ev.payload["mode"]) == (actor, target_type, "all")
    assert ev.payload["stages"] in (["language"], 1)


@pytest.mark.parametrize("entry", REPROCESS_ENTRIES)
def test_an_audit_write_that_fails_starts_no_reprocessing(entry: str) -> None:
    call = REPROCESS_ENTRIES[entry][0]
    asset = make_asset(title="note.txt")
    undone(lambda: call(asset, fail=True))
    assert not Job.objects.filter(asset=asset).exists()
    assert not StageRun.objects.filter(asset=asset).exists()
