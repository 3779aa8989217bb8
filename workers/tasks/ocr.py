"""Queue ``ocr``: text in images and keyframes, merged over time."""

from __future__ import annotations

from typing import Any

from apps.insights import models as im
from workers.base import StageContext
from workers.tasks import stage_task
from workers.tasks.visual import frames_for
from workers.telemetry import engine_call


def keyframe_windows(asset_id: object, duration: float | None) -> dict[int, tuple[float, float]]:
    """The stretch of media each keyframe stands for: from the previous keyframe (or its scene's start)
    to the next keyframe (or its scene's end)."""
    scenes = {s.index: (s.start, s.end) for s in im.Scene.objects.filter(asset_id=asset_id)}
    kfs = list(im.Keyframe.objects.filter(asset_id=asset_id).order_by("index").values("index", "time", "scene_index"))
    out: dict[int, tuple[float, float]] = {}
    for i, k in enumerate(kfs):
        s_start, s_end = scenes.get(k["scene_index"], (0.0, duration or k["time"]))
        prev = kfs[i - 1] if i else None
        nxt = kfs[i + 1] if i + 1 < len(kfs) else None
        start = prev["time"] if prev and prev["scene_index"] == k["scene_index"] else s_start
        end = nxt["time"] if nxt and nxt["scene_index"] == k["scene_index"] else s_end
        out[k["index"]] = (start, end)
    return out


@stage_task("ocr")
def ocr(ctx: StageContext) -> dict[str, Any]:
    """Tesseract per frame; identical text on consecutive keyframes becomes one time range."""
    from workers.engines.ocr import merge_over_time
    from workers.stage_engines import ocr_engine

    engine = ocr_engine()
    frames = frames_for(ctx)
    with engine_call("ocr", len(frames)):
        results = [(f, engine.read(f.image)) for f in frames]
    rows: list[dict[str, Any]] = []
    if ctx.asset.kind == "image":
        for _f, r in results:
            if r.text.strip():
                rows.append({"text": r.text.strip(), "confidence": r.confidence, "keyframe_index": None,
                             "boxes": [{"text": ln.text, "box": list(ln.box), "confidence": ln.confidence}
                                       for ln in r.lines]})
    else:
        windows = keyframe_windows(ctx.asset.pk, ctx.asset.duration)
        index_at = {f.time: f.index for f in frames}
        for span in merge_over_time([(f.time, r) for f, r in results]):
            first, last = index_at.get(span.start), index_at.get(span.end)
            start = windows[first][0] if first in windows else span.start
            end = windows[last][1] if last in windows else span.end
            rows.append({"text": span.text, "confidence": span.confidence, "start": start, "end": end,
                         "keyframe_index": first, "boxes": []})
    ctx.save(im.OcrText, rows)
    return {"frames": len(frames), "texts": len(rows), "engine": engine.info.version}
