"""Shared pieces of management commands."""

from __future__ import annotations

import sys
from pathlib import Path

from django.core.management.base import CommandError


def read_text_argument(file: str) -> str:
    """The text of the file a command was given (``-``: standard input), a leading BOM dropped;
    an unreadable file is a CommandError naming it, never a traceback."""
    if file == "-":
        return sys.stdin.read().removeprefix("\ufeff")
    try:
        return Path(file).read_text(encoding="utf-8-sig")
    except OSError as e:
        raise CommandError(f"cannot read {file}: {e}") from None
    except UnicodeDecodeError:
        raise CommandError(f"cannot read {file}: not UTF-8 text") from None
