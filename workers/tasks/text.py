"""The text of an asset, from every source, as searchable pieces with their place in the media."""

from __future__ import annotations

import json
from typing import Any

from django.core.files.storage import default_storage

from apps.insights.models import OcrText, TranscriptSegment
from workers.base import StageContext
from workers.tasks.decode import derived_key


def text_document(ctx: StageContext) -> dict[str, Any] | None:
    """The extracted document of a text asset (text + segments), or None."""
    key = derived_key(ctx.asset.sha256, "text.json")
    if ctx.asset.kind != "text" or not default_storage.exists(key):
        return None
    with default_storage.open(key, "rb") as f:
        return json.loads(f.read())


def searchable_texts(ctx: StageContext) -> list[dict[str, Any]]:
    """Transcript windows (time ranges kept), OCR spans, and text chunks (char offsets kept)."""
    from workers.engines.text_embed import chunk_text, transcript_windows

    out: list[dict[str, Any]] = []
    segs = list(TranscriptSegment.objects.filter(asset_id=ctx.asset.pk).order_by("index")
                .values("start", "end", "text", "language"))
    for w in transcript_windows(segs):
        out.append({"source": "transcript", "text": w.text, "start": w.start, "end": w.end,
                    "language": segs[w.first_segment]["language"] or ""})
    for o in OcrText.objects.filter(asset_id=ctx.asset.pk).order_by("start", "id"):
        out.append({"source": "ocr", "text": o.text, "start": o.start, "end": o.end})
    doc = text_document(ctx)
    if doc:
        timed = [s for s in doc["segments"] if s.get("start") is not None]
        if timed:  # subtitles: windows over cues, like a transcript
            for w in transcript_windows(timed):
                first = timed[w.first_segment]
                last = timed[w.last_segment]
                out.append({"source": "text", "text": w.text, "start": w.start, "end": w.end,
                            "char_start": first["char_start"], "char_end": last["char_end"]})
        else:
            for c in chunk_text(doc["text"]):
                out.append({"source": "text", "text": c.text, "char_start": c.start, "char_end": c.end})
    return out
