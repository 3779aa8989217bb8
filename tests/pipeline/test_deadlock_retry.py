"""A reprocess whose transaction PostgreSQL aborts as a deadlock's victim is run again.

A worker finishing one of the asset's stages updates the same stage rows as a reprocess does; a
contract run once hit PostgreSQL's deadlock detector there and answered a 500.
"""

from __future__ import annotations

import psycopg.errors
import pytest
from django.db import OperationalError

from apps.audit.models import AuditEvent
from apps.audit.services import Actor
from apps.core.transactions import retry_transaction
from apps.pipeline import actions, reprocess
from apps.pipeline.models import Job
from tests.moderation.helpers import make_asset, make_user

pytestmark = pytest.mark.django_db


def deadlock() -> OperationalError:
    try:
        raise psycopg.errors.DeadlockDetected("deadlock detected")
    except psycopg.errors.DeadlockDetected as cause:
        error = OperationalError("deadlock detected")
        error.__cause__ = cause
        return error


def test_a_reprocess_aborted_as_a_deadlock_victim_runs_again_and_audits_once(monkeypatch):
    asset = make_asset(make_user("ada", "admin"), kind="image")
    real, calls = reprocess.run, []

    def aborted_once(*args, **kwargs):
        calls.append(1)
        jobs = real(*args, **kwargs)  # the first attempt's writes are rolled back with it
        if len(calls) == 1:
            raise deadlock()
        return jobs

    monkeypatch.setattr(reprocess, "run", aborted_once)
    selected, jobs = actions.reprocess_asset(asset.pk, mode="all", stages=[], actor=Actor.system("test"))
    assert len(calls) == 2 and jobs == 1 and selected
    assert Job.objects.filter(asset=asset, reason="api-all").count() == 1
    assert AuditEvent.objects.filter(verb="pipeline.reprocessed").count() == 1


def test_other_database_errors_are_not_retried():
    calls = []

    def broken():
        calls.append(1)
        raise OperationalError("connection refused")

    with pytest.raises(OperationalError):
        retry_transaction(broken)
    assert calls == [1]


def test_a_deadlock_that_persists_is_raised_after_the_last_attempt():
    calls = []

    def always():
        calls.append(1)
        raise deadlock()

    with pytest.raises(OperationalError):
        retry_transaction(always, attempts=3)
    assert calls == [1, 1, 1]
