"""Queue ``ocr``: text in images and keyframes, merged over time."""

from __future__ import annotations

import os
from typing import Any

from apps.insights import models as im
from workers.base import StageContext
from workers.tasks import stage_task
from workers.tasks.visual import frames_for


@stage_task("ocr")
def ocr(ctx: StageContext) -> dict[str, Any]:
    """Tesseract per frame; identical text on consecutive keyframes becomes one time range."""
    from workers.engines.ocr import get_ocr, merge_over_time

    engine = get_ocr(lang=os.environ.get("MEDIAINTEL_OCR_LANG", "eng"))
    frames = frames_for(ctx)
    results = [(f, engine.read(f.image)) for f in frames]
    rows: list[dict[str, Any]] = []
    if ctx.asset.kind == "image":
        for _f, r in results:
            if r.text.strip():
                rows.append({"text": r.text.strip(), "confidence": r.confidence, "keyframe_index": None,
                             "boxes": [{"text": ln.text, "box": list(ln.box), "confidence": ln.confidence}
                                       for ln in r.lines]})
    else:
        index_at = {f.time: f.index for f in frames}
        for span in merge_over_time([(f.time, r) for f, r in results]):
            rows.append({"text": span.text, "confidence": span.confidence, "start": span.start, "end": span.end,
                         "keyframe_index": index_at.get(span.start), "boxes": []})
    ctx.save(im.OcrText, rows)
    return {"frames": len(frames), "texts": len(rows), "engine": engine.info.version}
