"""``manage.py policy show | export [FILE] [--version N] | import FILE [--note N] | versions``.

Importing a YAML document creates the policy's next version (and makes it active) unless the
rules equal the active version's. After a change, ``manage.py reprocess --stale --stage moderate``
re-moderates the library under it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.moderation import policy_io
from apps.moderation.models import Policy, PolicyVersion
from apps.moderation.services import ModerationError


class Command(BaseCommand):
    help = "Moderation policies as YAML: export, import (a new version), list versions."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", default=None, help="policy name (default: `default`, or the document's)")
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("show")
        sub.add_parser("versions")
        ex = sub.add_parser("export")
        ex.add_argument("file", nargs="?", default="-")
        ex.add_argument("--version", type=int, dest="number")
        im = sub.add_parser("import")
        im.add_argument("file", help="YAML path, or - for stdin")
        im.add_argument("--note", default=None)

    def handle(self, *args: Any, action: str, name: str | None, **opts: Any) -> None:
        try:
            getattr(self, f"_{action}")(name=name, **opts)
        except ModerationError as e:
            raise CommandError(str(e)) from None

    def _version(self, name: str | None, number: int | None = None) -> PolicyVersion:
        name = name or "default"
        if number is None:
            return policy_io.active_version(name)
        v = PolicyVersion.objects.select_related("policy").filter(policy__name=name, number=number).first()
        if v is None:
            raise CommandError(f"policy {name!r} has no version {number}")
        return v

    def _show(self, name: str | None, **_: Any) -> None:
        self.stdout.write(policy_io.export_yaml(self._version(name)), ending="")

    def _versions(self, name: str | None, **_: Any) -> None:
        policy = Policy.objects.filter(name=name or "default").first()
        if policy is None:
            raise CommandError(f"no policy named {name or 'default'!r}")
        for v in policy.versions.select_related("created_by").order_by("-number"):
            active = "*" if v.pk == policy.active_version_id else " "
            who = v.created_by.get_username() if v.created_by else "-"
            self.stdout.write(f"{active} v{v.number:<4} {v.created_at:%Y-%m-%d %H:%M:%S} {who:<16} {v.note}")

    def _export(self, name: str | None, file: str, number: int | None = None, **_: Any) -> None:
        text = policy_io.export_yaml(self._version(name, number))
        if file == "-":
            self.stdout.write(text, ending="")
        else:
            try:
                Path(file).write_text(text, encoding="utf-8")
            except OSError as e:
                raise CommandError(f"cannot write {file}: {e.strerror or e}") from None
            self.stderr.write(f"wrote {file}")

    def _import(self, name: str | None, file: str, note: str | None, **_: Any) -> None:
        if file == "-":
            text = sys.stdin.read()
        else:
            try:
                text = Path(file).read_text(encoding="utf-8")
            except OSError as e:
                raise CommandError(f"cannot read {file}: {e}") from None
            except UnicodeDecodeError:
                raise CommandError(f"cannot read {file}: not UTF-8 text (a YAML file is expected)") from None
        v, created = policy_io.import_yaml(text, name=name, note=note)
        if created:
            self.stdout.write(f"imported {v.label} (now active); run `reprocess --stale --stage moderate` to "
                              "re-moderate the library")
        else:
            self.stdout.write(f"unchanged: {v.label} already has these rules")
