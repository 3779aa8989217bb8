"""Audited actions of the pipeline: dead-letter replay and discard, reprocessing.

Invariant: each function here owns its transaction and writes its audit record inside it, so the
state change and its record commit together or not at all (the stage messages go out on commit).
Dead letters: the API (``apps.pipeline.views``), the console (``apps.pipeline.console``) and
``manage.py dlq``; reprocessing: the asset API (``apps.assets.views``) and ``manage.py reprocess``.
None of them writes a ``dlq.*`` or ``pipeline.reprocessed`` audit record itself.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from apps.audit.services import Actor, record
from apps.core.transactions import retry_transaction
from apps.pipeline import reprocess, services
from apps.pipeline.models import DeadLetter


def replay_dead_letter(dead_letter_id: int, *, actor: Actor) -> bool:
    """Send a dead stage again (attempts reset, its job reopens; the message goes out on commit).

    Returns False, and changes nothing, when the stage is no longer dead (already replayed, or
    finished since). Every attempt is audited (``dlq.replayed`` with ``sent``), so who tried is known.
    """
    with transaction.atomic():
        dl = DeadLetter.objects.select_for_update().select_related("stage_run").get(pk=dead_letter_id)
        sent = services.replay(dl)
        record("dlq.replayed", target_type="dead_letter", target_id=dl.pk, actor=actor,
               payload={"stage": dl.stage_run.stage, "asset": str(dl.stage_run.asset_id), "sent": sent})
    return sent


def discard_dead_letter(dead_letter_id: int, *, actor: Actor) -> bool:
    """Mark a dead letter discarded (the stage stays dead). Returns False when it already was; only a
    change is audited (``dlq.discarded``)."""
    with transaction.atomic():
        dl = DeadLetter.objects.select_for_update().select_related("stage_run").get(pk=dead_letter_id)
        if dl.discarded:
            return False
        DeadLetter.objects.filter(pk=dl.pk).update(discarded=True)
        record("dlq.discarded", target_type="dead_letter", target_id=dl.pk, actor=actor,
               payload={"stage": dl.stage_run.stage, "asset": str(dl.stage_run.asset_id)})
    return True


def reprocess_asset(asset_id: Any, *, mode: str, stages: list[str], actor: Actor) -> tuple[list[str], int]:
    """Re-run the stages of one asset that ``mode`` selects (restricted to ``stages`` when given).

    Returns ``(selected stages, jobs started)``; nothing selected changes and audits nothing.
    Otherwise the job and its ``pipeline.reprocessed`` record (target the asset) commit together.
    """
    from apps.assets.models import MediaAsset

    assets = MediaAsset.objects.filter(pk=asset_id)
    selected: list[str] = []
    for name in stages or [None]:
        selected += reprocess.select(mode, stage=name, assets=assets).stages.get(str(asset_id), [])
    if not selected:
        return [], 0
    def start() -> int:
        with transaction.atomic():
            jobs = reprocess.run(reprocess.Selection({str(asset_id): selected}), reason=f"api-{mode}")
            record("pipeline.reprocessed", target_type="asset", target_id=asset_id, actor=actor,
                   payload={"mode": mode, "stages": selected})
        return jobs

    # a worker finishing one of the asset's stages updates the same stage rows: PostgreSQL may
    # abort this transaction as a deadlock's victim, and then nothing of it is kept
    return selected, retry_transaction(start)


def reprocess_selection(selection: reprocess.Selection, *, mode: str, actor: Actor, stage: str | None = None,
                        kind: str | None = None) -> int:
    """Start the jobs of a library-wide selection (``manage.py reprocess``); returns jobs started.

    The jobs and one ``pipeline.reprocessed`` record (target the mode) commit together.
    """
    with transaction.atomic():
        jobs = reprocess.run(selection, reason=f"reprocess-{mode}", take_over=mode == "stuck")
        record("pipeline.reprocessed", target_type="pipeline", target_id=mode, actor=actor,
               payload={"mode": mode, "stage": stage, "kind": kind, "assets": len(selection.stages),
                        "stages": selection.count})
    return jobs
