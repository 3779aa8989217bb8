"""Queue ``decode``: probe, scenes, keyframes, audio, text extraction."""

from __future__ import annotations

import io
import os
import tempfile
from typing import Any

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from apps.insights import models as im
from workers.base import StageContext, StageSkipped
from workers.tasks import stage_task


def derived_key(sha256: str, name: str) -> str:
    """Storage key of a file derived from an asset's content (shared by duplicate uploads)."""
    return f"derived/{sha256[:2]}/{sha256}/{name}"



@stage_task("probe")
def probe(ctx: StageContext) -> dict[str, Any]:
    """Re-read container facts on the worker (the upload was probed already; this records the engine's view)."""
    from dataclasses import asdict

    if ctx.asset.kind == "image":
        from workers.engines.decode import load_image

        img = load_image(ctx.media_path())
        return {"width": img.width, "height": img.height}
    from workers.engines.decode import probe as probe_media

    info = probe_media(ctx.media_path())
    return {k: v for k, v in asdict(info).items() if v is not None}


@stage_task("scenes")
def scenes(ctx: StageContext) -> dict[str, Any]:
    """Scene cuts (PySceneDetect, downscaled)."""
    from workers.stage_engines import scene_engine

    found = scene_engine().detect(ctx.media_path())
    rows = [{"index": s.index, "start": s.start, "end": s.end, "start_frame": s.start_frame,
             "end_frame": s.end_frame} for s in found]
    ctx.save(im.Scene, rows)
    return {"scenes": len(rows)}


@stage_task("keyframes")
def keyframes(ctx: StageContext) -> dict[str, Any]:
    """One representative frame per scene plus samples in long scenes; JPEGs to storage."""
    from workers.engines.decode import jpeg_thumbnail
    from workers.engines.decode import keyframes as extract
    from workers.stage_engines import keyframe_interval

    cuts = list(im.Scene.objects.filter(asset_id=ctx.asset.pk).order_by("index").values_list("start", flat=True))
    frames = extract(ctx.media_path(), scene_cuts=cuts[1:] if len(cuts) > 1 else [],
                     max_interval=keyframe_interval(), size=1280)
    rows = []
    for i, kf in enumerate(frames):
        buf = io.BytesIO()
        kf.image.save(buf, "JPEG", quality=90)
        key = derived_key(ctx.asset.sha256, f"keyframes/{i:05d}.jpg")
        if default_storage.exists(key):
            default_storage.delete(key)
        default_storage.save(key, ContentFile(buf.getvalue()))
        rows.append({"index": i, "frame_index": kf.frame_index, "scene_index": kf.scene_index, "time": kf.time,
                     "start": kf.time, "end": kf.time, "width": kf.image.width, "height": kf.image.height,
                     "storage_key": key, "thumbnail": jpeg_thumbnail(kf.image, max_side=320, quality=75)})
    ctx.save(im.Keyframe, rows)
    return {"keyframes": len(rows)}


@stage_task("audio")
def audio(ctx: StageContext) -> dict[str, Any]:
    """The audio track as 16 kHz mono WAV in storage (decoded once for every audio consumer)."""
    if not ctx.asset.has_audio:
        raise StageSkipped("the media has no audio track")
    from workers.engines.decode import extract_audio_to_wav

    fd, tmp = tempfile.mkstemp(suffix=".wav")
    os.close(fd)
    try:
        seconds = extract_audio_to_wav(ctx.media_path(), tmp, sr=16000)
        key = derived_key(ctx.asset.sha256, "audio16k.wav")
        if default_storage.exists(key):
            default_storage.delete(key)
        with open(tmp, "rb") as f:
            default_storage.save(key, f)
    finally:
        os.unlink(tmp)
    return {"audio_seconds": round(seconds, 3), "key": key}


@stage_task("text_extract")
def text_extract(ctx: StageContext) -> dict[str, Any]:
    """Plain text out of txt/md/html/srt/vtt (cues keep their times), stored once for text stages."""
    import json
    from dataclasses import asdict

    from workers.engines.text_extract import extract_text

    with open(ctx.media_path(), "rb") as f:
        doc = extract_text(f.read(), ctx.asset.mime_type)
    key = derived_key(ctx.asset.sha256, "text.json")
    if default_storage.exists(key):
        default_storage.delete(key)
    default_storage.save(key, ContentFile(json.dumps(asdict(doc)).encode()))
    return {"characters": len(doc.text), "segments": len(doc.segments), "key": key}
