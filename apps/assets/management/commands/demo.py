"""``manage.py demo [--wait]``: ingest the generated demo set and follow its processing."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.assets.demo_media import generate
from apps.assets.models import MediaAsset, Source, Status
from apps.assets.services import ingest_local_file
from apps.pipeline.models import StageRun


class Command(BaseCommand):
    help = "Ingest a small generated demo library (video with speech, audio, images, text)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--wait", action="store_true", help="show progress until processing finishes")
        parser.add_argument("--timeout", type=float, default=900)
        parser.add_argument("--dir", default=str(Path(settings.MEDIA_ROOT).parent / "demo"))

    def handle(self, *args: Any, wait: bool, timeout: float, dir: str, **_: Any) -> None:
        if wait and not timeout > 0:  # also refuses nan
            raise CommandError("--timeout must be more than zero seconds")
        t0 = time.monotonic()
        try:
            files = generate(Path(dir))
        except OSError as e:
            raise CommandError(f"cannot write the demo set to {dir}: {e.strerror or e}") from None
        ids = []
        for f in files:
            res = ingest_local_file(f, source=Source.COMMAND, title=f"Demo: {f.stem}")
            ids.append(res.asset.pk)
            self.stdout.write(f"{'exists ' if res.duplicate else 'added  '} {res.asset.kind:<6} {f.name}")
        if not wait:
            return
        last = ""
        stages: Counter[str] = Counter()
        while time.monotonic() - t0 < timeout:
            assets = Counter(MediaAsset.objects.filter(pk__in=ids).values_list("status", flat=True))
            stages = Counter(StageRun.objects.filter(asset_id__in=ids, current=True).values_list("status", flat=True))
            line = (f"assets: {dict(assets)}  stages: {stages.get('done', 0)} done, "
                    f"{stages.get('skipped', 0)} skipped, {stages.get('running', 0)} running, "
                    f"{stages.get('dead', 0)} dead of {sum(stages.values())}")
            if line != last:
                self.stdout.write(f"[{time.monotonic() - t0:6.1f}s] {line}")
                last = line
            if sum(assets[s] for s in (Status.READY, Status.FAILED)) == len(ids):
                break
            time.sleep(1)
        done = MediaAsset.objects.filter(pk__in=ids, status=Status.READY).count()
        self.stdout.write(f"demo: {done}/{len(ids)} assets ready, {stages.get('done', 0)} stages done, "
                          f"{time.monotonic() - t0:.1f}s")
        if done != len(ids):
            raise CommandError("some demo assets did not finish; see the console's dead letters")
