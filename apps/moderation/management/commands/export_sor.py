"""``manage.py export_sor --from 2026-01-01 --to 2026-01-31 --format json|csv --out FILE``: statements of
reasons of the restricting decisions in that range, in the layout of the EU DSA Transparency Database.
"""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.moderation import dsa, sor_export


class Command(BaseCommand):
    help = "Export statements of reasons (DSA Transparency Database layout) for a range of days."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--from", dest="start", required=True, help="first day, YYYY-MM-DD (UTC, included)")
        parser.add_argument("--to", dest="end", required=True, help="last day, YYYY-MM-DD (UTC, included)")
        parser.add_argument("--format", choices=sor_export.FORMATS, default="json")
        parser.add_argument("--out", default="-", help="file to write ('-': standard output)")
        parser.add_argument("--territory", default=",".join(dsa.EEA_COUNTRIES),
                            help="comma-separated EU/EEA country codes of territorial_scope (default: all)")

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            start = dsa.parse_day(opts["start"], "--from")
            end = dsa.parse_day(opts["end"], "--to")
            statements = sor_export.statements_between(start, end,
                                                       territorial_scope=opts["territory"].split(","))
            body = sor_export.render(statements, opts["format"])
        except ValueError as e:
            raise CommandError(str(e)) from None
        out = opts["out"]
        if out == "-":
            sys.stdout.write(body)
        else:
            try:
                with open(out, "w", encoding="utf-8", newline="") as fh:
                    fh.write(body)
            except OSError as e:
                raise CommandError(f"cannot write {out}: {e.strerror or e}") from None
            self.stderr.write(f"{len(statements)} statement(s) of reasons written to {out}")
