"""Bank matching through the worker's in-memory index: exact, and in step with the table."""

from __future__ import annotations

import random

import pytest
from django.db import connection

from apps.moderation import actions, bankmatch, banks
from apps.moderation.models import HashBank, HashBankEntry
from apps.moderation.signals import hash_matches
from tests.moderation.helpers import flip, make_asset, phash, random_bits
from workers.bankindex import BankIndex

pytestmark = pytest.mark.django_db


@pytest.fixture
def index():
    idx = BankIndex()
    old = bankmatch.install_index(idx)
    yield idx
    bankmatch.install_index(old)


def _scattered(bits: str, n: int, seed: int) -> str:
    b = list(bits)
    for i in random.Random(seed).sample(range(256), n):
        b[i] = "1" if b[i] == "0" else "0"
    return "".join(b)


def _bank_with_planted(threshold: int = 31) -> tuple[str, HashBank, dict[int, int]]:
    base = random_bits(5)
    bank = HashBank.objects.create(name="blk", threshold=threshold)
    rng = random.Random(1)
    unrelated = [f"{rng.getrandbits(256):064x}" for _ in range(300)]
    near = {banks.bits_to_hex(_scattered(base, d, d)): d for d in range(0, 41)}
    actions.import_bank_csv(bank, "\n".join(unrelated + list(near)), scan=False)
    planted = {e.pk: near[banks.bits_to_hex(e.hash)] for e in bank.entries.all() if banks.bits_to_hex(e.hash) in near}
    assert len(planted) == 41
    return base, bank, planted


def test_every_entry_within_the_threshold_is_found_and_none_beyond(index):
    base, _bank, planted = _bank_with_planted()
    (found,) = bankmatch.match([base])
    assert {f["id"]: f["distance"] for f in found} == {k: d for k, d in planted.items() if d <= 31}
    assert [f["distance"] for f in found] == sorted(f["distance"] for f in found)


def test_the_index_and_the_sql_scan_give_the_same_answer(index):
    base, _bank, _ = _bank_with_planted(threshold=20)
    queries = [base, flip(base, 7), random_bits(99)]
    with_index = bankmatch.match(queries)
    bankmatch.install_index(None)
    assert bankmatch.match(queries) == with_index
    assert [len(x) for x in with_index] == [21, len(with_index[1]), 0]


def test_added_entries_are_visible_to_the_next_lookup_and_removed_ones_are_not(index):
    base, bank, _planted = _bank_with_planted()
    assert len(bankmatch.match([base])[0]) == 32
    new, _ = actions.add_bank_entry(bank, banks.bits_to_hex(flip(base, 31, start=100)), scan=False)
    assert new.pk in {f["id"] for f in bankmatch.match([base])[0]}
    actions.update_bank_entry(new, enabled=False)
    assert new.pk not in {f["id"] for f in bankmatch.match([base])[0]}
    actions.update_bank_entry(new, enabled=True)
    assert new.pk in {f["id"] for f in bankmatch.match([base])[0]}
    HashBankEntry.objects.filter(pk=new.pk).delete()
    assert new.pk not in {f["id"] for f in bankmatch.match([base])[0]}
    HashBank.objects.filter(pk=bank.pk).update(enabled=False)
    assert bankmatch.match([base]) == [[]]


def test_an_entry_committed_after_a_higher_id_is_still_found(index):
    """Ids are handed out in order but committed in any order: a skipped id is re-read until it appears."""
    base, bank, _ = _bank_with_planted()
    top = HashBankEntry.objects.order_by("-id").first().pk
    late = flip(base, 3, start=200)
    HashBankEntry.objects.create(id=top + 10, bank=bank, hash=flip(base, 2, start=200))
    assert {f["distance"] for f in bankmatch.match([base])[0]} >= {2}
    HashBankEntry.objects.create(id=top + 5, bank=bank, hash=late)  # "commits" after top + 10 was read
    assert top + 5 in {f["id"] for f in bankmatch.match([base])[0]}
    with connection.cursor() as cur:  # keep the sequence ahead of the ids chosen here
        cur.execute("SELECT setval(pg_get_serial_sequence('moderation_hashbankentry', 'id'), %s)", [top + 20])


def test_the_moderate_stage_signal_uses_the_index(index):
    base, _bank, _planted = _bank_with_planted()
    asset = make_asset(kind="image")
    phash(asset, base)
    rows = hash_matches(asset.pk)
    assert len(rows) == 1 and rows[0]["evidence"]["distance"] == 0
    assert len(index) == 300 + 41


def test_a_lookup_with_nothing_new_makes_one_database_round_trip_when_entries_are_in_reach(index):
    from django.db import connection as conn
    from django.test.utils import CaptureQueriesContext

    base, _bank, planted = _bank_with_planted()
    bankmatch.match([base])  # the first lookup loads the index
    with CaptureQueriesContext(conn) as ctx:
        found, _near = bankmatch.match([base, flip(base, 5)])
    assert len(ctx.captured_queries) == 1
    assert {f["id"] for f in found} == {k for k, d in planted.items() if d <= 31}


def test_entries_within_a_raised_threshold_are_found_on_the_next_lookup(index):
    base, bank, planted = _bank_with_planted(threshold=10)
    assert {f["id"] for f in bankmatch.match([base])[0]} == {k for k, d in planted.items() if d <= 10}
    HashBank.objects.filter(pk=bank.pk).update(threshold=31)
    assert {f["id"] for f in bankmatch.match([base])[0]} == {k for k, d in planted.items() if d <= 31}


def test_an_entry_added_disabled_is_not_matched_and_matches_once_enabled(index):
    base, bank, _planted = _bank_with_planted()
    bankmatch.match([base])
    new = HashBankEntry.objects.create(bank=bank, hash=flip(base, 4, start=150), enabled=False)
    assert new.pk not in {f["id"] for f in bankmatch.match([base])[0]}
    actions.update_bank_entry(new, enabled=True)
    assert new.pk in {f["id"] for f in bankmatch.match([base])[0]}


def test_entries_of_a_bulk_import_after_the_index_loaded_are_found(index, monkeypatch):
    from workers import bankindex

    base, bank, planted = _bank_with_planted()
    bankmatch.match([base])
    monkeypatch.setattr(bankindex, "CATCH_UP_LIMIT", 5)  # past this many new rows the rest comes by COPY
    added = [HashBankEntry.objects.create(bank=bank, hash=flip(base, d, start=120)).pk for d in range(1, 13)]
    found = {f["id"] for f in bankmatch.match([base])[0]}
    assert set(added) <= found and {k for k, d in planted.items() if d <= 31} <= found
