"""``manage.py audit verify``: detect a tampered or missing audit event."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.audit.services import verify


class Command(BaseCommand):
    help = "Audit trail tools."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["verify"])

    def handle(self, *args: Any, action: str, **_: Any) -> None:
        result = verify()
        for p in result.problems:
            self.stderr.write(p)
        if not result.ok:
            raise CommandError(f"audit chain BROKEN: {len(result.problems)} problem(s) in {result.checked} events")
        self.stdout.write(f"audit chain OK: {result.checked} events verified")
