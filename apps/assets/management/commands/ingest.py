"""``manage.py ingest PATH… [--recursive] [--kind K] [--wait]``."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from apps.assets.models import Kind, MediaAsset, Source, Status
from apps.assets.services import ingest_local_file
from apps.assets.sniff import Rejected
from apps.pipeline import backpressure


def collect(paths: list[str], recursive: bool) -> tuple[list[Path], list[tuple[str, str]]]:
    """Files named or found under the given paths, and (path, why) for each path that is neither."""
    files: list[Path] = []
    missing: list[tuple[str, str]] = []
    for raw in paths:
        p = Path(raw)
        if p.is_file():
            files.append(p)
        elif p.is_dir():
            it = p.rglob("*") if recursive else p.iterdir()
            files.extend(sorted(x for x in it if x.is_file() and not x.name.startswith(".")))
        elif p.exists():
            missing.append((raw, "not a regular file or directory"))
        else:
            missing.append((raw, "no such file or directory"))
    return files, missing


class Command(BaseCommand):
    help = "Ingest local files into the library (validated, deduplicated, then processed)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="+")
        parser.add_argument("--recursive", "-r", action="store_true", help="descend into directories")
        parser.add_argument("--kind", choices=[k.value for k in Kind], help="only accept this kind")
        parser.add_argument("--wait", action="store_true", help="wait until every ingested asset is processed")
        parser.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait with --wait")
        parser.add_argument("--title-prefix", default="")

    def handle(self, *args: Any, paths: list[str], recursive: bool, kind: str | None, wait: bool,
               timeout: float, title_prefix: str, **_: Any) -> None:
        if wait and not timeout > 0:  # also refuses nan
            raise CommandError("--timeout must be more than zero seconds")
        console = Console(stderr=True)
        files, rejected = collect(paths, recursive)
        counts: Counter[str] = Counter()
        ids: list[str] = []
        with Progress(TextColumn("ingest"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      TextColumn("{task.description}"), console=console, transient=True) as bar:
            task = bar.add_task("", total=len(files))
            for f in files:
                bar.update(task, description=f.name[:40])
                try:
                    res = self._ingest_with_backpressure(f, kind, title_prefix)
                    counts["duplicates" if res.duplicate else "ingested"] += 1
                    ids.append(str(res.asset.pk))
                except Rejected as e:
                    rejected.append((str(f), f"{e.code}: {e.message}"))
                except OSError as e:
                    rejected.append((str(f), f"unreadable: {e}"))
                bar.advance(task)
        counts["rejected"] = len(rejected)
        table = Table(title="ingest summary")
        for col in ("ingested", "duplicates", "rejected"):
            table.add_column(col, justify="right")
        table.add_row(str(counts["ingested"]), str(counts["duplicates"]), str(counts["rejected"]))
        Console().print(table)
        if rejected:
            rt = Table(title="rejected")
            rt.add_column("file")
            rt.add_column("reason")
            for name, why in rejected:
                rt.add_row(name, why)
            Console().print(rt)
        if wait and ids:
            self._wait(ids, timeout, console)
        if rejected:
            raise CommandError(f"{len(rejected)} file(s) rejected")

    def _ingest_with_backpressure(self, f: Path, kind: str | None, prefix: str) -> Any:
        while backpressure.saturation() is not None:  # the pipeline is saturated: wait instead of failing
            time.sleep(2)
        title = f"{prefix}{f.stem}" if prefix else ""
        return ingest_local_file(f, kind_hint=kind, source=Source.COMMAND, title=title)

    def _wait(self, ids: list[str], timeout: float, console: Console) -> None:
        deadline = time.monotonic() + timeout
        with console.status("processing…") as status:
            while time.monotonic() < deadline:
                pending = MediaAsset.objects.filter(pk__in=ids).exclude(
                    status__in=[Status.READY, Status.FAILED]).count()
                status.update(f"processing… {len(ids) - pending}/{len(ids)} done")
                if pending == 0:
                    break
                time.sleep(0.5)
        done = Counter(MediaAsset.objects.filter(pk__in=ids).values_list("status", flat=True))
        self.stdout.write("processed: " + ", ".join(f"{k}={v}" for k, v in sorted(done.items())))
        if done.get(Status.FAILED):
            raise CommandError(f"{done[Status.FAILED]} asset(s) failed processing")
