"""Assets driven through the real pipeline transitions and moderation actions, in this process.

Each stage goes claim → (the moderate stage's decision) → complete inside one transaction, as a
worker's ``PipelineTask`` does; no engine runs (the events are about the transitions, not the
insights), so a whole asset takes well under a second.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.db import transaction

from apps.assets.models import MediaAsset
from apps.assets.services import ingest_local_file
from apps.pipeline import services as pipeline
from apps.pipeline.models import StageRun


class Boom(Exception):
    pass


def ingest_text(tmp_path: Path, uploader: Any, text: str) -> MediaAsset:
    p = tmp_path / f"doc-{abs(hash(text))}.txt"
    p.write_text(text)
    return ingest_local_file(p, uploader=uploader, title="events").asset


def drive(asset_id: Any, *, fail_once: str = "", skip: str = "", kill: str = "") -> list[str]:
    """Run every queued stage of the asset until none is left; the stages in the order run.

    ``fail_once``: that stage fails transiently once (retried); ``skip``: it does not apply;
    ``kill``: it fails permanently (dead, the asset fails).
    """
    from apps.moderation.services import moderate_asset

    order: list[str] = []
    failed: set[str] = set()
    while True:
        run = (StageRun.objects.filter(asset_id=asset_id, current=True, status__in=["queued", "retrying"])
               .order_by("queued_at", "id").first())
        if run is None:
            return order
        tid = f"t-{run.pk}-{run.attempts}"
        claim = pipeline.claim(run.pk, "events-test", tid)
        assert claim is not None, run.stage
        order.append(run.stage)
        if run.stage == fail_once and run.stage not in failed:
            failed.add(run.stage)
            assert pipeline.schedule_retry(run.pk, tid, TimeoutError("engine busy"), "tb") is not None
            continue
        if run.stage == skip:
            assert pipeline.skip(run.pk, tid, "does not apply")
            continue
        if run.stage == kill:
            assert pipeline.bury(run.pk, tid, Boom("corrupt input"), "tb", permanent=True)
            continue
        with transaction.atomic():
            summary = moderate_asset(claim.asset) if run.stage == "moderate" else {"rows": 0}
            assert pipeline.complete(run.pk, tid, summary)
