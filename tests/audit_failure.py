"""An audit store that refuses appends, for tests of audited actions.

``refusing_audit()`` installs a PostgreSQL trigger (inside the test's own transaction, so it is
gone when the test ends) that makes every INSERT into the audit table fail, as a full disk or a
broken chain would: an action must then leave nothing changed. ``undone(call)`` runs an entry
point under it and accepts either way the failure surfaces (an exception, or a 5xx response).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.db import DatabaseError, connection

from apps.audit.models import AuditEvent


@contextmanager
def refusing_audit() -> Iterator[None]:
    table = AuditEvent._meta.db_table
    with connection.cursor() as cur:
        cur.execute("CREATE OR REPLACE FUNCTION test_refuse_audit() RETURNS trigger LANGUAGE plpgsql AS "
                    "$$ BEGIN RAISE EXCEPTION 'audit store unavailable'; END $$")
        cur.execute(f"CREATE TRIGGER test_refuse_audit BEFORE INSERT ON {table} "
                    "FOR EACH ROW EXECUTE FUNCTION test_refuse_audit()")
    try:
        yield
    finally:
        with connection.cursor() as cur:
            cur.execute(f"DROP TRIGGER IF EXISTS test_refuse_audit ON {table}")


def undone(call: Callable[[], Any]) -> None:
    """Run ``call`` with the audit store refusing; it must fail (exception or 5xx), never succeed."""
    before = AuditEvent.objects.count()
    with refusing_audit():
        try:
            result = call()
        except DatabaseError as e:
            assert "audit store unavailable" in str(e), e
        else:
            status = getattr(result, "status_code", None)
            assert status is None or status >= 500, f"the entry point reported success ({status})"
    assert AuditEvent.objects.count() == before
