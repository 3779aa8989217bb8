"""Queue ``detect``: face boxes and counts per keyframe (or per image). Detection only, no identity."""

from __future__ import annotations

from typing import Any

from apps.insights import models as im
from workers.base import StageContext
from workers.tasks import stage_task
from workers.tasks.visual import frames_for


@stage_task("faces")
def faces(ctx: StageContext) -> dict[str, Any]:
    """One row per frame with its face count and boxes (count 0 included)."""
    from workers.stage_engines import face_detector

    frames = frames_for(ctx)
    engine = face_detector()
    found = engine.detect([f.image for f in frames])
    rows = [{"keyframe_index": f.index, "start": f.time, "end": f.time, "count": len(fs),
             "boxes": [{"box": list(x.box), "confidence": x.confidence} for x in fs]}
            for f, fs in zip(frames, found, strict=True)]
    ctx.save(im.FaceFrame, rows)
    counts = [r["count"] for r in rows]
    return {"frames": len(rows), "faces": sum(counts), "frames_with_faces": sum(1 for c in counts if c),
            "max_per_frame": max(counts, default=0), "engine": engine.info.version}
