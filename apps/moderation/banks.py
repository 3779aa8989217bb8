"""Hash banks: hashes by hex, CSV parsing and export, and the retroactive scan. (Changing a bank or its
entries is an audited action: ``apps.moderation.actions``.)

CSV format (header optional): ``hash_hex,quality,label`` — 64 hex digits of a PDQ hash, its
quality 0..100 (default 100) and a free label.

Adding or re-enabling entries starts a *retroactive scan*: existing assets whose PDQ hashes
lie within the bank's threshold of a new entry (found through the ``bit(256)`` HNSW index,
``ORDER BY hash <~> entry LIMIT n`` per entry) get their ``moderate`` stage re-run, so content
already in the library is blocked (block bank) or released (allow bank) under the new entries.
The scan task handles a bounded batch of entries and re-enqueues itself with the rest.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction

from apps.assets.models import MediaAsset, ModerationState
from apps.audit.services import Actor, record
from apps.insights.knn import pdq_nearest
from apps.moderation.models import Decision, HashBank, HashBankEntry
from apps.moderation.services import ModerationError
from apps.pipeline import reprocess
from mediacommon.text import contains_nul

log = logging.getLogger("mediaintel.banks")

SCAN_TASK = "mediaintel.moderation.bank_scan"
CSV_FIELDS = ("hash_hex", "quality", "label")
_HEX = re.compile(r"^[0-9a-fA-F]{64}$")


def scan_batch_size() -> int:
    return int(getattr(settings, "MEDIAINTEL_BANK_SCAN_BATCH", 50))


def scan_limit() -> int:
    return int(getattr(settings, "MEDIAINTEL_BANK_SCAN_LIMIT", 200))


# ------------------------------------------------------------------ hashes
def hex_to_bits(value: str) -> str:
    """64 hex digits → the 256-char bit string ``bit(256)`` takes; ModerationError when malformed."""
    v = (value or "").strip().lower()
    if v.startswith("0x"):
        v = v[2:]
    if not _HEX.match(v):
        raise ModerationError("a PDQ hash is 64 hex digits", "invalid_hash", 400)
    return f"{int(v, 16):0256b}"


def bits_to_hex(bits: str) -> str:
    return f"{int(bits, 2):064x}"


def parse_quality(value: Any) -> int:
    """A quality 0..100 (default 100); ModerationError when it is not one."""
    try:
        q = int(value if value not in (None, "") else 100)
    except (TypeError, ValueError):
        raise ModerationError("quality must be an integer 0..100", "invalid", 400) from None
    if not 0 <= q <= 100:
        raise ModerationError("quality must be an integer 0..100", "invalid", 400)
    return q


# ------------------------------------------------------------------ CSV
@dataclass
class ImportResult:
    added: int = 0
    existing: int = 0
    errors: list[str] = field(default_factory=list)
    entry_ids: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"added": self.added, "existing": self.existing, "errors": self.errors}


def parse_csv(text: str | Iterable[str], *, max_errors: int = 100) -> tuple[dict[str, tuple[int, str]], ImportResult]:
    """``hash_hex,quality,label`` rows (header optional) → ``{bits: (quality, label)}`` (first row of a hash
    wins) and a result holding the malformed rows' errors; stores nothing
    (:func:`apps.moderation.actions.import_bank_csv` does)."""
    lines = io.StringIO(text, newline="") if isinstance(text, str) else text  # any line ending, even a lone CR
    result = ImportResult()
    rows: dict[str, tuple[int, str]] = {}
    for lineno, row in enumerate(csv.reader(lines), 1):
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        if lineno == 1 and row[0].strip().lower() in {"hash_hex", "hash", "hex"}:
            continue
        try:
            bits = hex_to_bits(row[0])
            q = parse_quality(row[1].strip() if len(row) > 1 else None)
        except ModerationError as e:
            if len(result.errors) < max_errors:
                result.errors.append(f"line {lineno}: {e}")
            continue
        label = (row[2].strip() if len(row) > 2 else "")[:200]
        if contains_nul(label):
            if len(result.errors) < max_errors:
                result.errors.append(f"line {lineno}: the label contains a NUL (U+0000) character")
            continue
        rows.setdefault(bits, (q, label))
    return rows, result


def export_csv(bank: HashBank, *, include_disabled: bool = True) -> Iterator[str]:
    """CSV lines (with header) of the bank's entries, oldest first."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_FIELDS)
    yield buf.getvalue()
    qs = bank.entries.order_by("id")
    if not include_disabled:
        qs = qs.filter(enabled=True)
    for e in qs.only("hash", "quality", "label").iterator(chunk_size=2000):
        buf.seek(0)
        buf.truncate()
        w.writerow((bits_to_hex(e.hash), e.quality, e.label))
        yield buf.getvalue()


# ------------------------------------------------------------------ retroactive scan
def schedule_scan(entry_ids: list[int]) -> None:
    """Enqueue the retroactive scan for these entries once the caller's transaction commits."""
    if entry_ids:
        ids = sorted(entry_ids)
        transaction.on_commit(lambda: _send_scan(ids))


def _send_scan(entry_ids: list[int]) -> bool:
    from mediaintel.celery import app

    try:
        app.send_task(SCAN_TASK, args=[entry_ids], queue="maintenance", routing_key="maintenance")
        return True
    except Exception as e:  # the scan is an optimisation of re-moderation; `bank scan` runs it by hand
        log.warning("could not publish bank scan of %s entries: %s", len(entry_ids), e)
        return False


def matching_assets(entry: HashBankEntry, limit: int | None = None) -> list[tuple[Any, int]]:
    """(asset id, distance) of PDQ hashes within the bank's threshold of ``entry`` (HNSW, nearest first)."""
    bank = entry.bank
    rows = [(n.asset_id, n.quality, n.distance) for n in pdq_nearest(entry.hash, limit or scan_limit())]
    out: dict[Any, int] = {}
    for asset_id, quality, d in rows:
        if int(d) <= bank.threshold and quality >= bank.min_quality and entry.quality >= bank.min_quality:
            out[asset_id] = min(int(d), out.get(asset_id, 256))
    return sorted(out.items(), key=lambda kv: kv[1])


def scan_batch(entry_ids: list[int], *, batch: int | None = None) -> dict[str, Any]:
    """Scan the first ``batch`` entries, re-moderate the assets they match, re-enqueue the rest."""
    batch = batch or scan_batch_size()
    todo, rest = sorted(set(entry_ids))[:batch], sorted(set(entry_ids))[batch:]
    entries = list(HashBankEntry.objects.select_related("bank").filter(pk__in=todo, enabled=True, bank__enabled=True))
    targets: dict[Any, str] = {}
    for e in entries:
        for asset_id, _d in matching_assets(e):
            if asset_id != e.source_asset_id:
                targets.setdefault(asset_id, e.bank.kind)
    skip_state = {HashBank.Kind.BLOCK: ModerationState.BLOCKED, HashBank.Kind.ALLOW: ModerationState.APPROVED}
    states = dict(MediaAsset.objects.filter(pk__in=list(targets)).values_list("pk", "moderation_state"))
    humans = set(Decision.objects.filter(asset_id__in=list(targets), automated_decision=False)
                 .values_list("asset_id", flat=True))
    # a block entry changes nothing for an asset already blocked, an allow entry nothing for one approved,
    # and automation never overrides a human decision
    ids = [a for a, kind in targets.items() if a in states and a not in humans and states[a] != skip_state[kind]]
    selection = reprocess.select("all", stage="moderate", assets=MediaAsset.objects.filter(pk__in=ids))
    with transaction.atomic():  # the re-moderation jobs and their audit record commit together
        jobs = reprocess.run(selection, reason="bank-scan") if selection.count else 0
        summary = {"entries": len(entries), "matched": len(targets), "remoderated": sorted(selection.stages),
                   "jobs": jobs, "remaining": len(rest)}
        if targets:
            record("bank.scanned", target_type="hash_bank",
                   target_id=",".join(sorted({e.bank.name for e in entries}))[:64], actor=Actor.system("bank-scan"),
                   payload={**summary, "remoderated": len(selection.stages)})
    if rest:
        _send_scan(rest)
    log.info("bank scan", extra={k: v for k, v in summary.items() if k != "remoderated"})
    return summary


def scan_bank(bank: HashBank) -> int:
    """Schedule a scan of every enabled entry of the bank (``bank scan NAME``); entries queued."""
    ids = list(bank.entries.filter(enabled=True).values_list("pk", flat=True))
    for i in range(0, len(ids), 5000):
        _send_scan(ids[i:i + 5000])
    return len(ids)
