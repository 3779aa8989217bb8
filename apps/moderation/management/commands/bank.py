"""``manage.py bank list | create NAME | import NAME FILE | export NAME [FILE] | add-asset NAME ID | scan NAME``.

CSV is ``hash_hex,quality,label`` (header optional; ``-`` reads stdin / writes stdout). Imports
queue a retroactive scan that re-moderates existing assets matching the new entries
(``--no-scan`` to skip).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.assets.models import MediaAsset
from apps.audit.services import Actor
from apps.core.cli import read_text_argument
from apps.core.models import is_uuid
from apps.moderation import actions, banks
from apps.moderation.models import HashBank, HashBankEntry
from apps.moderation.services import ModerationError

ACTOR = Actor.system("bank-command")


class Command(BaseCommand):
    help = "Hash banks: list, create, CSV import/export, add an asset's hashes, retroactive scan."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("list")
        cr = sub.add_parser("create")
        cr.add_argument("name")
        cr.add_argument("--kind", choices=HashBank.Kind.values, default=HashBank.Kind.BLOCK)
        cr.add_argument("--threshold", type=int, default=31)
        cr.add_argument("--min-quality", type=int, default=50)
        im = sub.add_parser("import")
        im.add_argument("name")
        im.add_argument("file", help="CSV path, or - for stdin")
        im.add_argument("--create", action="store_true", help="create the bank (block) when missing")
        im.add_argument("--kind", choices=HashBank.Kind.values, default=HashBank.Kind.BLOCK)
        im.add_argument("--no-scan", action="store_true", help="do not re-moderate matching assets")
        ex = sub.add_parser("export")
        ex.add_argument("name")
        ex.add_argument("file", nargs="?", default="-")
        ex.add_argument("--enabled-only", action="store_true")
        aa = sub.add_parser("add-asset")
        aa.add_argument("name")
        aa.add_argument("asset")
        aa.add_argument("--label", default="")
        sc = sub.add_parser("scan")
        sc.add_argument("name")
        sc.add_argument("--now", action="store_true", help="scan in this process instead of queueing tasks")

    def handle(self, *args: Any, action: str, **opts: Any) -> None:
        try:
            getattr(self, "_" + action.replace("-", "_"))(**opts)
        except ModerationError as e:
            raise CommandError(str(e)) from None

    def _bank(self, name: str) -> HashBank:
        bank = HashBank.objects.filter(name=name).first()
        if bank is None:
            raise CommandError(f"no hash bank named {name!r} (bank create {name})")
        return bank

    def _list(self, **_: Any) -> None:
        banks_ = list(HashBank.objects.order_by("name"))
        if not banks_:
            self.stdout.write("no hash banks")
        for b in banks_:
            n, on = b.entries.count(), b.entries.filter(enabled=True).count()
            self.stdout.write(f"{b.name:<24} {b.kind:<6} {'enabled' if b.enabled else 'disabled':<9} "
                              f"threshold={b.threshold} min_quality={b.min_quality} entries={n} enabled={on}")

    def _create(self, name: str, kind: str, threshold: int, min_quality: int, **_: Any) -> None:
        longest = HashBank._meta.get_field("name").max_length
        if not name.strip() or len(name) > longest:
            raise CommandError(f"a bank name is 1 to {longest} characters, not blank (got {len(name)})")
        if HashBank.objects.filter(name=name).exists():
            raise CommandError(f"a bank named {name!r} exists")
        if not 0 <= threshold <= 128 or not 0 <= min_quality <= 100:
            raise CommandError("threshold is 0..128 and min-quality 0..100")
        bank = actions.create_bank(user=ACTOR, name=name, kind=kind, threshold=threshold, min_quality=min_quality)
        self.stdout.write(f"created {bank}")

    def _import(self, name: str, file: str, create: bool, kind: str, no_scan: bool, **_: Any) -> None:
        bank = HashBank.objects.filter(name=name).first()
        if bank is None:
            if not create:
                raise CommandError(f"no hash bank named {name!r} (use --create)")
            self._create(name=name, kind=kind, threshold=31, min_quality=50)
            bank = self._bank(name)
        text = read_text_argument(file)
        result = actions.import_bank_csv(bank, text, user=ACTOR, scan=not no_scan)
        for err in result.errors:
            self.stderr.write(err)
        self.stdout.write(f"{bank.name}: {result.added} added, {result.existing} already present, "
                          f"{len(result.errors)} rejected" + ("" if no_scan or not result.added
                                                               else "; retroactive scan queued"))
        if result.errors and not result.added and not result.existing:
            raise CommandError("nothing could be imported")

    def _export(self, name: str, file: str, enabled_only: bool, **_: Any) -> None:
        bank = self._bank(name)
        lines = banks.export_csv(bank, include_disabled=not enabled_only)
        if file == "-":
            for line in lines:
                self.stdout.write(line, ending="")
            return
        n = -1
        try:
            with open(file, "w", encoding="utf-8") as f:
                for n, line in enumerate(lines):  # noqa: B007
                    f.write(line)
        except OSError as e:
            raise CommandError(f"cannot write {file}: {e.strerror or e}") from None
        self.stderr.write(f"wrote {max(n, 0)} entries to {file}")

    def _add_asset(self, name: str, asset: str, label: str, **_: Any) -> None:
        longest = HashBankEntry._meta.get_field("label").max_length
        if len(label) > longest:
            raise CommandError(f"--label is at most {longest} characters (got {len(label)})")
        bank = self._bank(name)
        if not is_uuid(asset):
            raise CommandError(f"not an asset id (a UUID): {asset}")
        a = MediaAsset.objects.filter(pk=asset).first()
        if a is None:
            raise CommandError(f"no such asset: {asset}")
        ids = actions.add_asset_to_bank(bank, a, user=ACTOR, label=label)
        self.stdout.write(f"{bank.name}: {len(ids)} hash(es) of {a.pk} added")

    def _scan(self, name: str, now: bool, **_: Any) -> None:
        bank = self._bank(name)
        if not now:
            n = actions.request_bank_scan(bank, user=ACTOR)
            self.stdout.write(f"{bank.name}: scan of {n} entries queued")
            return
        ids = list(bank.entries.filter(enabled=True).order_by("id").values_list("pk", flat=True))
        step = banks.scan_batch_size()
        total = 0
        for i in range(0, len(ids), step):
            summary = banks.scan_batch(ids[i:i + step], batch=step)
            total += len(summary["remoderated"])
        self.stdout.write(f"{bank.name}: {len(ids)} entries scanned, {total} asset(s) re-moderated")
