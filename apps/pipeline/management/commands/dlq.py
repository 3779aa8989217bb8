"""``manage.py dlq list | show ID | replay ID… | replay --all | discard ID…``."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.audit.services import Actor
from apps.pipeline.actions import discard_dead_letter, replay_dead_letter
from apps.pipeline.models import DeadLetter


class Command(BaseCommand):
    help = "Inspect, replay or discard dead-lettered stages."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        ls = sub.add_parser("list")
        ls.add_argument("--all", action="store_true", help="include replayed and discarded")
        sub.add_parser("show").add_argument("id", type=int)
        rp = sub.add_parser("replay")
        rp.add_argument("ids", nargs="*", type=int)
        rp.add_argument("--all", action="store_true")
        sub.add_parser("discard").add_argument("ids", nargs="+", type=int)

    def handle(self, *args: Any, action: str, **opts: Any) -> None:
        getattr(self, f"_{action}")(**opts)

    def _open(self) -> Any:
        return DeadLetter.objects.filter(replayed_at__isnull=True, discarded=False)

    def _list(self, all: bool = False, **_: Any) -> None:
        qs = DeadLetter.objects.all() if all else self._open()
        rows = list(qs.select_related("stage_run").order_by("id"))
        if not rows:
            self.stdout.write("no dead letters")
        for d in rows:
            state = "replayed" if d.replayed_at else "discarded" if d.discarded else "open"
            self.stdout.write(f"{d.pk:>6}  {d.failed_at:%Y-%m-%d %H:%M:%S}  {d.stage_run.stage:<12} "
                              f"{d.stage_run.asset_id}  {state:<9} {d.error_class}: {d.error[:80]}")

    def _get(self, pk: int) -> DeadLetter:
        try:
            return DeadLetter.objects.select_related("stage_run").get(pk=pk)
        except DeadLetter.DoesNotExist:
            raise CommandError(f"no dead letter #{pk}") from None

    def _show(self, id: int, **_: Any) -> None:
        d = self._get(id)
        r = d.stage_run
        self.stdout.write(f"dead letter #{d.pk}\nstage:    {r.stage} (run {r.pk}, attempts {r.attempts})\n"
                          f"asset:    {r.asset_id}\ntask:     {d.task_name} {d.args}\nfailed:   {d.failed_at}\n"
                          f"error:    {d.error_class}: {d.error}\n\n{d.traceback}")

    def _replay(self, ids: list[int], all: bool = False, **_: Any) -> None:
        if not ids and not all:
            raise CommandError("name dead letter ids or use --all")
        targets = list(self._open()) if all else [self._get(i) for i in ids]
        failed = 0
        for d in targets:
            ok = replay_dead_letter(d.pk, actor=Actor.system("dlq-command"))
            self.stdout.write(f"#{d.pk} {'replayed' if ok else 'not replayable (stage is no longer dead)'}")
            failed += not ok
        if failed:
            raise CommandError(f"{failed} dead letter(s) could not be replayed")

    def _discard(self, ids: list[int], **_: Any) -> None:
        for i in ids:
            d = self._get(i)
            changed = discard_dead_letter(d.pk, actor=Actor.system("dlq-command"))
            self.stdout.write(f"#{d.pk} {'discarded' if changed else 'was already discarded'}")
