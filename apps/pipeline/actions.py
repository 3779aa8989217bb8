"""Audited actions on the pipeline's dead letters.

Invariant: each function here owns its transaction and writes its audit record inside it, so the
state change and its record commit together or not at all. The API (``apps.pipeline.views``),
the console (``apps.pipeline.console``) and ``manage.py dlq`` call these; none of them writes a
``dlq.*`` audit record itself.
"""

from __future__ import annotations

from django.db import transaction

from apps.audit.services import Actor, record
from apps.pipeline import services
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
