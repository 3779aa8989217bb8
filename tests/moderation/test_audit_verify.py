"""A tampered or deleted audit row is detected by ``manage.py audit verify`` (a real subprocess)."""

from __future__ import annotations

import subprocess
import sys

import psycopg
import pytest
from django.conf import settings

from apps.audit.models import AuditEvent
from apps.audit.services import Actor, record
from tests.conftest import ROOT, worker_env

pytestmark = pytest.mark.django_db(transaction=True)

RESTORE = ("CREATE TRIGGER audit_event_no_update BEFORE UPDATE OR DELETE ON audit_auditevent "
           "FOR EACH ROW EXECUTE FUNCTION audit_event_append_only()")


def superuser() -> psycopg.Connection:
    db = settings.DATABASES["default"]
    conn = psycopg.connect(host=db["HOST"], port=db["PORT"], user=db["USER"], password=db["PASSWORD"] or None,
                           dbname=db["NAME"])
    assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0]
    return conn


def verify_cli() -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "manage.py", "audit", "verify"], cwd=ROOT, env=worker_env(),
                          capture_output=True, text=True, timeout=120)


def behind_the_trigger(sql: str, params: list) -> None:
    """Drop the append-only trigger, change the table, restore it — one transaction, as an attacker with
    superuser rights could."""
    with superuser() as conn, conn.transaction():
        conn.execute("DROP TRIGGER audit_event_no_update ON audit_auditevent")
        assert conn.execute(sql, params).rowcount == 1
        conn.execute(RESTORE)


@pytest.fixture
def chain():
    events = [record("test.event", target_type="asset", target_id=f"a{i}", actor=Actor.system("test"),
                     payload={"n": i}) for i in range(5)]
    ok = verify_cli()
    assert ok.returncode == 0 and "audit chain OK: 5 events verified" in ok.stdout, ok.stdout + ok.stderr
    return events


def test_the_table_refuses_updates_and_deletes(chain):
    with superuser() as conn:
        for sql in ("UPDATE audit_auditevent SET verb = 'x' WHERE id = %s",
                    "DELETE FROM audit_auditevent WHERE id = %s"):
            with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
                conn.execute(sql, [chain[0].pk])
            conn.rollback()


def test_tampered_row_is_detected(chain):
    target = chain[2]
    behind_the_trigger("UPDATE audit_auditevent SET payload = %s WHERE id = %s", ['{"n": 999}', target.pk])
    assert AuditEvent.objects.get(pk=target.pk).payload == {"n": 999}
    r = verify_cli()
    assert r.returncode != 0
    assert f"#{target.pk}: content does not match its hash (tampered)" in r.stderr
    assert "audit chain BROKEN" in r.stderr
    # the trigger is back
    with superuser() as conn, pytest.raises(psycopg.errors.RaiseException):
        conn.execute("UPDATE audit_auditevent SET verb = 'y' WHERE id = %s", [target.pk])


def test_deleted_row_is_detected(chain):
    gone = chain[3]
    behind_the_trigger("DELETE FROM audit_auditevent WHERE id = %s", [gone.pk])
    r = verify_cli()
    assert r.returncode != 0
    assert f"#{chain[4].pk}: prev_hash does not match the previous event" in r.stderr
