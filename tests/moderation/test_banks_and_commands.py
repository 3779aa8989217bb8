"""Hash-bank matching (exact: apps.moderation.bankmatch), the bounded retroactive scan, the bank/policy commands."""

from __future__ import annotations

import pytest
import yaml
from django.core.management import CommandError, call_command

from apps.moderation import actions, banks
from apps.moderation.models import HashBank, HashBankEntry, Policy
from apps.moderation.services import active_policy_version
from apps.moderation.signals import hash_matches
from apps.pipeline.models import Job
from tests.moderation.helpers import flip, make_asset, moderated, phash, random_bits

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch):
    """Scan batches published to the broker (captured instead)."""
    calls: list[list[int]] = []
    monkeypatch.setattr(banks, "_send_scan", lambda ids: calls.append(list(ids)) or True)
    return calls


def test_matching_assets_within_the_threshold_only():
    base = random_bits(42)
    bank = HashBank.objects.create(name="b", threshold=20)
    near, edge, far, weak = (make_asset(kind="image") for _ in range(4))
    phash(near, flip(base, 5))
    phash(edge, flip(base, 20))
    phash(far, flip(base, 21))
    phash(weak, flip(base, 1), quality=10)
    for i in range(30):  # unrelated library
        phash(make_asset(kind="image"), random_bits(1000 + i))
    entry, _ = actions.add_bank_entry(bank, banks.bits_to_hex(base), scan=False)
    found = dict(banks.matching_assets(entry))
    assert found == {near.pk: 5, edge.pk: 20}
    # the same index answers the moderate stage: a block match becomes a signal, an allow match suppresses it
    rows = hash_matches(near.pk)
    assert len(rows) == 1 and rows[0]["category_id"] == "known_bad/hash_match" and rows[0]["evidence"]["distance"] == 5
    allow = HashBank.objects.create(name="ok", kind="allow", threshold=20)
    actions.add_bank_entry(allow, banks.bits_to_hex(base), scan=False)
    assert hash_matches(near.pk) == []


def test_scan_remoderates_matches_in_bounded_batches(sent, django_capture_on_commit_callbacks):
    bank = HashBank.objects.create(name="blk")
    bases = [random_bits(i) for i in range(3)]
    matched = []
    for b in bases:
        a = make_asset(kind="image")
        phash(a, flip(b, 3))
        moderated(a)  # approved before the entries exist
        matched.append(a)
    a.refresh_from_db()
    assert a.moderation_state == "approved"
    with django_capture_on_commit_callbacks(execute=True):
        result = actions.import_bank_csv(bank, "\n".join(f"{banks.bits_to_hex(b)},100,x" for b in bases))
    assert result.added == 3 and sent == [result.entry_ids]
    first = banks.scan_batch(sent[0], batch=2)
    assert first["entries"] == 2 and first["remaining"] == 1 and sent[-1] == result.entry_ids[2:]
    assert len(first["remoderated"]) == 2
    second = banks.scan_batch(sent[-1], batch=2)
    assert second["remaining"] == 0 and len(second["remoderated"]) == 1
    jobs = Job.objects.filter(reason="bank-scan")
    assert {j.asset_id for j in jobs} == {a.pk for a in matched}
    assert all(set(j.stages.values_list("stage", flat=True)) >= {"moderate"} for j in jobs)
    # disabled entries scan nothing
    HashBankEntry.objects.update(enabled=False)
    assert banks.scan_batch(result.entry_ids)["entries"] == 0


def test_bank_command_create_import_export(tmp_path, capsys):
    call_command("bank", "create", "shared-list", "--threshold", "25")
    src = tmp_path / "in.csv"
    h = [banks.bits_to_hex(random_bits(i)) for i in range(3)]
    src.write_text(f"hash_hex,quality,label\n{h[0]},90,a\n{h[1]},80,b\nzz,1,bad\n")
    call_command("bank", "import", "shared-list", str(src), "--no-scan")
    out = capsys.readouterr()
    assert "2 added, 0 already present, 1 rejected" in out.out and "line 4" in out.err
    call_command("bank", "import", "allow-list", str(src), "--create", "--kind", "allow", "--no-scan")
    assert HashBank.objects.get(name="allow-list").kind == "allow"
    dst = tmp_path / "out.csv"
    call_command("bank", "export", "shared-list", str(dst))
    assert dst.read_text() == f"hash_hex,quality,label\n{h[0]},90,a\n{h[1]},80,b\n"
    capsys.readouterr()
    call_command("bank", "list")
    assert "shared-list" in capsys.readouterr().out
    with pytest.raises(CommandError, match="no hash bank"):
        call_command("bank", "export", "missing")
    with pytest.raises(CommandError, match="exists"):
        call_command("bank", "create", "shared-list")


def test_policy_command_export_import_round_trip(tmp_path, capsys):
    path = tmp_path / "policy.yaml"
    call_command("policy", "export", str(path))
    doc = yaml.safe_load(path.read_text())
    assert doc["policy"] == "default" and doc["version"] == 1 and "harassment/threat" in doc["rules"]["categories"]
    call_command("policy", "import", str(path))
    assert "unchanged" in capsys.readouterr().out
    doc["rules"]["categories"]["spam/links"]["review"] = 0.6
    path.write_text(yaml.safe_dump(doc))
    call_command("policy", "import", str(path), "--note", "more spam review")
    assert "imported default@v2" in capsys.readouterr().out
    active = Policy.objects.get(name="default").active_version
    assert active.number == 2 and active.note == "more spam review" and active.rules == doc["rules"]
    # a bare rules document works too; invalid documents are refused
    bare = tmp_path / "bare.yaml"
    bare.write_text(yaml.safe_dump({"categories": {"profanity": {"review": 0.2, "block": 1.01}}}))
    call_command("policy", "import", str(bare))
    capsys.readouterr()
    assert active_policy_version().rules == {"categories": {"profanity": {"review": 0.2, "block": 1.01}}}
    bare.write_text("categories:\n  profanity: {review: 2, block: 1}\n")
    with pytest.raises(CommandError, match="review must be a number"):
        call_command("policy", "import", str(bare))
    call_command("policy", "versions")
    assert capsys.readouterr().out.splitlines()[0].startswith("* v3")
