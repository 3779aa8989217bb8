"""``manage.py reprocess (--missing|--stale|--failed|--stuck|--all) [--stage S] [--kind K] [--asset ID] [--dry-run]``
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.assets.models import MediaAsset
from apps.audit.services import Actor
from apps.core.models import is_uuid
from apps.pipeline import plans, reprocess
from apps.pipeline.actions import reprocess_selection
from mediacommon.routing import STAGE_QUEUES


class Command(BaseCommand):
    help = "Re-run exactly the stages that need it: never what is current."

    def add_arguments(self, parser: CommandParser) -> None:
        mode = parser.add_mutually_exclusive_group(required=True)
        for m in reprocess.MODES:
            mode.add_argument(f"--{m}", dest="mode", action="store_const", const=m)
        parser.add_argument("--stage", choices=sorted(STAGE_QUEUES))
        parser.add_argument("--kind", choices=sorted(plans.PLANS))
        parser.add_argument("--asset", action="append", default=[], help="asset id (repeatable)")
        parser.add_argument("--dry-run", action="store_true")

    def handle(self, *args: Any, mode: str, stage: str | None, kind: str | None, asset: list[str],
               dry_run: bool, **_: Any) -> None:
        qs = MediaAsset.objects.all()
        if asset:
            bad = [a for a in asset if not is_uuid(a)]
            if bad:
                raise CommandError(f"not an asset id (a UUID): {', '.join(bad)}")
            qs = qs.filter(pk__in=asset)
            missing = set(asset) - {str(p) for p in qs.values_list("pk", flat=True)}
            if missing:
                raise CommandError(f"no such asset: {', '.join(sorted(missing))}")
        sel = reprocess.select(mode, stage=stage, kind=kind, assets=qs)
        for asset_id, stages in sorted(sel.stages.items()):
            self.stdout.write(f"{asset_id}  {', '.join(stages)}")
        if dry_run:
            self.stdout.write(f"dry run: {sel.count} stage(s) on {len(sel.stages)} asset(s) would be re-run")
            return
        jobs = reprocess_selection(sel, mode=mode, stage=stage, kind=kind, actor=Actor.system("reprocess-command"))
        self.stdout.write(f"started {jobs} job(s) for {sel.count} stage(s) on {len(sel.stages)} asset(s)")
