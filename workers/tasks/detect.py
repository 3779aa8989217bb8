"""Queue ``detect``: nudity boxes (bundled NudeNet YOLOv8), COCO objects (configured YOLO weights, else the
bundled YOLOv3-tiny), open_nsfw scores. Object rows carry the raw label and its vocabulary concept."""

from __future__ import annotations

from typing import Any

from apps.insights import models as im
from mediacommon.vocabulary import canonical
from workers.base import StageContext
from workers.engines.base import EngineUnavailable
from workers.tasks import stage_task
from workers.tasks.visual import frames_for
from workers.telemetry import engine_call


@stage_task("detect")
def detect(ctx: StageContext) -> dict[str, Any]:
    """Boxes per frame from every detector; objects are skipped with a reason only when no detector is installed."""
    from workers.stage_engines import nudity_detector, object_detector

    frames = frames_for(ctx)
    images = [f.image for f in frames]
    rows: list[dict[str, Any]] = []
    summary: dict[str, Any] = {"frames": len(frames)}
    detectors = {"nudity": nudity_detector}
    try:
        objects = object_detector()
        detectors["objects"] = lambda: objects
    except EngineUnavailable as e:
        summary["objects"] = f"skipped: {e}"
    for name, get in detectors.items():
        engine = get()
        with engine_call(f"detect.{name}", len(images)):
            found = engine.detect(images)
        for f, dets in zip(frames, found, strict=True):
            rows.extend({"detector": name, "label": d.label,
                         "canonical": canonical(d.label) if name == "objects" else "",
                         "confidence": d.confidence, "box": list(d.box),
                         "keyframe_index": f.index, "start": f.time, "end": f.time} for d in dets)
        summary[f"{name}_engine"] = engine.info.version
    objects_found = [r for r in rows if r["detector"] == "objects"]
    if "objects_engine" in summary:
        summary["objects_labels"] = sorted({r["canonical"] for r in objects_found})
        summary["max_persons_per_frame"] = max(
            (sum(1 for r in objects_found if r["canonical"] == "person" and r["keyframe_index"] == f.index)
             for f in frames), default=0)
    ctx.save(im.Detection, rows)
    summary["detections"] = len(rows)
    return summary


@stage_task("nsfw")
def nsfw(ctx: StageContext) -> dict[str, Any]:
    """open_nsfw probability per frame."""
    from workers.stage_engines import nsfw_classifier

    frames = frames_for(ctx)
    engine = nsfw_classifier()
    with engine_call("nsfw", len(frames)):
        scores = engine.score([f.image for f in frames])
    rows = [{"score": float(s), "keyframe_index": f.index, "start": f.time, "end": f.time}
            for f, s in zip(frames, scores, strict=True)]
    ctx.save(im.NsfwScore, rows)
    return {"frames": len(rows), "max": round(max(scores, default=0.0), 4), "engine": engine.info.version}
