"""``manage.py gc [--dry-run] [--min-age SECONDS]``: remove stored bytes that no asset references.

Orphans are blobs (``blobs/…``) and derived files (``derived/<sha>/…``) in the configured
storage, and blob copies in this host's worker cache, whose content no ``MediaAsset`` row
holds. A crash between the blob write and the row commit, a deletion whose storage clean-up
failed, or a worker that missed the eviction broadcast leaves them. Files younger than
``--min-age`` (default one hour) are kept: an ingest in flight writes its blob before its row
commits. Each orphan is printed with its size, then the totals; any error exits non-zero.
Run it on every worker host (their caches are local) — on one of them for the shared storage.
"""

from __future__ import annotations

import math
import time
from datetime import UTC
from typing import Any

from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError

from apps.assets import storage
from apps.assets.models import MediaAsset


class Command(BaseCommand):
    help = "Find (and unless --dry-run, delete) blobs, derived files and worker-cache copies no asset references."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="List orphans without deleting anything.")
        parser.add_argument("--min-age", type=float, default=3600.0,
                            help="Keep files younger than this many seconds (ingests in flight). Default 3600.")

    def handle(self, *args: Any, dry_run: bool = False, min_age: float = 3600.0, **opts: Any) -> None:
        if not math.isfinite(min_age):
            raise CommandError("--min-age must be a finite number of seconds.")
        if min_age < 0:
            raise CommandError("--min-age must be zero or more seconds.")
        cutoff = time.time() - min_age
        try:
            shas = set(MediaAsset.objects.values_list("sha256", flat=True))
            keys = set(MediaAsset.objects.values_list("storage_key", flat=True))
        except DatabaseError as e:  # without the asset rows nothing can be called an orphan
            raise CommandError(f"cannot read the assets from the database: {e}".strip()) from None
        found: list[tuple[str, str, int, Any]] = []  # (where, name, bytes, delete)
        errors: list[str] = []

        def old_enough(key: str) -> bool:
            try:
                modified = default_storage.get_modified_time(key)
            except (FileNotFoundError, NotImplementedError):
                return True
            if modified.tzinfo is None:
                modified = modified.replace(tzinfo=UTC)
            return modified.timestamp() <= cutoff

        try:
            for key, size in storage.walk("blobs"):
                if key not in keys and key.rsplit("/", 1)[-1] not in shas and old_enough(key):
                    found.append(("storage", key, size, lambda k=key: default_storage.delete(k)))
            for key, size in storage.walk("derived"):
                parts = key.split("/")
                if (len(parts) < 4 or parts[2] not in shas) and old_enough(key):
                    found.append(("storage", key, size, lambda k=key: default_storage.delete(k)))
        except Exception as e:  # storage unreachable: say so, never a traceback
            errors.append(f"listing the storage failed: {e}")
        for sha, path, size in storage.cached_copies():
            if sha not in shas and path.stat().st_mtime <= cutoff:
                found.append(("worker-cache", str(path), size, lambda p=path: p.unlink(missing_ok=True)))

        total = count = 0
        for where, name, size, delete in found:
            if not dry_run:
                try:
                    delete()
                except Exception as e:
                    errors.append(f"could not delete {name}: {e}")
                    continue
            total += size
            count += 1
            self.stdout.write(f"{'orphan' if dry_run else 'removed'}\t{where}\t{name}\t{size}")
        verb = "would remove" if dry_run else "removed"
        self.stdout.write(f"{verb} {count} orphan file(s), {total} bytes")
        if errors:
            raise CommandError("; ".join(errors))
