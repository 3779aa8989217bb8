"""The reads behind a review item's page: everything about an asset that
:func:`apps.moderation.evidence.assemble` turns into the page's evidence, and the asset's history.

Invariant: a bounded number of queries per page (one per kind of insight, plus three per hash match).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django.core.files.storage import default_storage
from django.db.models import Q

from apps.assets.models import Kind, MediaAsset
from apps.audit.models import AuditEvent
from apps.insights import models as im
from apps.moderation.evidence import EvidenceData, HashMatchData
from apps.moderation.models import Decision, HashBankEntry, Signal

log = logging.getLogger(__name__)

MAX_FRAMES = 240
MAX_HISTORY = 200


def evidence_data(asset: MediaAsset) -> EvidenceData:
    """Read what the review page shows about ``asset``."""
    from apps.insights.labels import scene_labels

    signals = list(Signal.objects.filter(asset=asset).select_related("category").order_by("-score", "id"))
    return EvidenceData(
        asset_id=asset.pk, kind=asset.kind, duration=asset.duration, signals=signals,
        label_groups=list(scene_labels(asset.pk)),
        detections=list(im.Detection.objects.filter(asset=asset).order_by("-confidence")),
        faces={f.keyframe_index: f.boxes for f in im.FaceFrame.objects.filter(asset=asset, count__gt=0)},
        keyframes=list(im.Keyframe.objects.filter(asset=asset).defer("thumbnail").order_by("index")[:MAX_FRAMES]),
        transcript=list(im.TranscriptSegment.objects.filter(asset=asset).order_by("index")),
        ocr=list(im.OcrText.objects.filter(asset=asset).order_by("start", "id")),
        text_flags=list(im.TextSpanFlag.objects.filter(asset=asset).order_by("char_start")),
        document=document_text(asset) if asset.kind == Kind.TEXT else None,
        hash_matches=[hash_match_data(s) for s in signals if s.source == "hash"],
    )


def hash_match_data(s: Signal) -> HashMatchData:
    """The source asset of a hash signal's bank entry, its keyframe with that hash, its decision."""
    ev = s.evidence or {}
    source = MediaAsset.objects.filter(pk=ev["source_asset"]).first() if ev.get("source_asset") else None
    if source is None:
        return HashMatchData(signal=s)
    frame = None
    entry = HashBankEntry.objects.filter(pk=ev.get("entry_id")).only("hash").first()
    if entry is not None:
        frame = im.PerceptualHash.objects.filter(asset=source, hash=entry.hash).values_list(
            "keyframe_index", flat=True).first()
    return HashMatchData(signal=s, source=source, source_frame=frame,
                         source_decision=Decision.objects.filter(asset=source).first())


def document_text(asset: MediaAsset) -> str | None:
    """The extracted text of a text asset (the document that text flags' offsets refer to)."""
    key = f"derived/{asset.sha256[:2]}/{asset.sha256}/text.json"  # workers.tasks.decode.derived_key
    try:
        with default_storage.open(key, "rb") as f:
            return str(json.loads(f.read()).get("text", ""))
    except (OSError, ValueError):
        return None
    except Exception:  # a remote store (S3) raises its own errors
        log.exception("could not read the extracted text of %s", asset.pk)
        return None


def asset_history(asset_id: Any, limit: int = MAX_HISTORY) -> list[AuditEvent]:
    """The asset's audit trail, newest first (with replays and discards of its dead letters)."""
    from apps.pipeline.models import DeadLetter

    letters = [str(pk) for pk in DeadLetter.objects.filter(stage_run__asset_id=asset_id).values_list("pk", flat=True)]
    where = Q(target_type="asset", target_id=str(asset_id))
    if letters:
        where |= Q(target_type="dead_letter", target_id__in=letters)
    return list(AuditEvent.objects.filter(where).order_by("-id")[:limit])
