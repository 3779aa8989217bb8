"""The audit trail: append-only inside PostgreSQL, hash-chained, verifiable."""

from __future__ import annotations

import threading

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from apps.audit.models import AuditEvent
from apps.audit.services import GENESIS, Actor, record, verify


@pytest.mark.django_db(transaction=True)
def test_events_chain_and_verify():
    a = record("asset.ingested", target_type="asset", target_id="a1", actor=Actor.system("test"), payload={"n": 1})
    b = record("asset.deleted", target_type="asset", target_id="a1", actor=Actor.system("test"))
    assert a.prev_hash == GENESIS and b.prev_hash == a.hash and a.hash != b.hash
    result = verify()
    assert result.ok and result.checked == 2


@pytest.mark.django_db
def test_update_and_delete_are_rejected_by_postgresql():
    e = record("x.y", target_type="t", target_id="1", actor=Actor.system("test"))
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=e.pk).update(verb="changed")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=e.pk).delete()
    assert AuditEvent.objects.get(pk=e.pk).verb == "x.y"


@pytest.mark.django_db
def test_tampering_is_detected(capsys):
    for i in range(3):
        record("asset.ingested", target_type="asset", target_id=str(i), actor=Actor.system("test"))
    call_command("audit", "verify")
    assert "3 events verified" in capsys.readouterr().out
    target = AuditEvent.objects.order_by("id")[1]
    with connection.cursor() as cur:  # a superuser bypassing the trigger, as an attacker with DB access would
        cur.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_event_no_update")
        cur.execute("UPDATE audit_auditevent SET payload = '{\"forged\": true}' WHERE id = %s", [target.pk])
        cur.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER audit_event_no_update")
    with pytest.raises(CommandError, match="BROKEN"):
        call_command("audit", "verify")
    assert f"#{target.pk}: content does not match" in capsys.readouterr().err


@pytest.mark.django_db(transaction=True)
def test_a_deleted_event_breaks_the_chain():
    events = [record("v", target_type="t", target_id=str(i), actor=Actor.system("test")) for i in range(3)]
    with connection.cursor() as cur:
        cur.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_event_no_update")
        cur.execute("DELETE FROM audit_auditevent WHERE id = %s", [events[1].pk])
        cur.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER audit_event_no_update")
    result = verify()
    assert not result.ok and any(f"#{events[2].pk}: prev_hash" in p for p in result.problems)


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_keep_one_linear_chain():
    def write(n: int) -> None:
        for i in range(10):
            record("c", target_type="t", target_id=f"{n}-{i}", actor=Actor.system("test"))
        connection.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result = verify()
    assert result.ok and result.checked == 40


@pytest.mark.django_db(transaction=True)
def test_an_audited_write_does_not_wait_when_another_transaction_has_audited_and_not_committed():
    recorded, release, outcome = threading.Event(), threading.Event(), {}

    def long_transaction() -> None:
        try:
            with transaction.atomic():
                outcome["long"] = record("long.action", target_type="t", target_id="long",
                                         actor=Actor.system("test"))
                recorded.set()
                release.wait(60)
        finally:
            recorded.set()
            connection.close()

    holder = threading.Thread(target=long_transaction)
    holder.start()
    try:
        assert recorded.wait(60)
        with transaction.atomic():
            with connection.cursor() as cur:  # waiting for the other transaction would raise here
                cur.execute("SET LOCAL lock_timeout = '5s'")
            short = record("short.action", target_type="t", target_id="short", actor=Actor.system("test"))
        short.refresh_from_db()
        assert short.hash is not None and short.prev_hash == GENESIS
    finally:
        release.set()
        holder.join()
    long = AuditEvent.objects.get(pk=outcome["long"].pk)
    assert long.prev_hash == short.hash  # the chain follows commit order
    result = verify()
    assert result.ok and result.checked == 2


@pytest.mark.django_db
def test_sealing_cannot_change_an_events_content():
    e = record("x.y", target_type="t", target_id="1", actor=Actor.system("test"))  # unsealed until commit
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=e.pk).update(verb="changed", seq=1, hash="f" * 64)
    verify()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=e.pk).update(seq=2, hash="e" * 64)
    assert AuditEvent.objects.get(pk=e.pk).seq == 1


@pytest.mark.django_db(transaction=True)
def test_an_event_rolled_back_with_its_action_leaves_no_gap_in_the_chain():
    record("a", target_type="t", target_id="1", actor=Actor.system("test"))
    with pytest.raises(RuntimeError), transaction.atomic():
        record("b", target_type="t", target_id="2", actor=Actor.system("test"))
        raise RuntimeError("the action failed")
    c = record("c", target_type="t", target_id="3", actor=Actor.system("test"))
    assert c.seq == 2 and not AuditEvent.objects.filter(verb="b").exists()
    assert verify().ok


@pytest.mark.django_db(transaction=True)
def test_an_event_whose_writer_died_before_sealing_is_sealed_by_the_next_write():
    first = record("a", target_type="t", target_id="1", actor=Actor.system("test"))
    orphan = AuditEvent.objects.create(created_at=first.created_at, actor_type="system", actor_label="test",
                                       verb="orphan", target_type="t", target_id="2")  # committed, never sealed
    assert AuditEvent.objects.get(pk=orphan.pk).hash is None
    last = record("c", target_type="t", target_id="3", actor=Actor.system("test"))
    orphan.refresh_from_db()
    assert (first.seq, orphan.seq, last.seq) == (1, 2, 3) and last.prev_hash == orphan.hash
    assert verify().ok


@pytest.mark.django_db(transaction=True)
def test_verify_stays_correct_while_writers_append():
    stop, results = threading.Event(), []

    def write(n: int) -> None:
        for i in range(15):
            record("c", target_type="t", target_id=f"{n}-{i}", actor=Actor.system("test"))
        connection.close()

    def check() -> None:
        while not stop.is_set():
            results.append(verify())
        connection.close()

    checker = threading.Thread(target=check)
    checker.start()
    writers = [threading.Thread(target=write, args=(n,)) for n in range(3)]
    for t in writers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    checker.join()
    assert results and all(r.ok for r in results), [r.problems for r in results if not r.ok]
    final = verify()
    assert final.ok and final.checked == 45
