"""Read-only representations of an asset's insights."""

from __future__ import annotations

from typing import Any

from apps.assets import links
from apps.insights import models as im
from apps.insights.labels import scene_labels


def _common(row: Any) -> dict[str, Any]:
    return {"start": row.start, "end": row.end, "engine": row.engine, "engine_version": row.engine_version}


def insights_of(asset: Any) -> dict[str, Any]:
    """Everything analysis produced for ``asset``, grouped by kind of insight, in media order."""
    pk = asset.pk

    def rows(model: type, *fields: str, order: tuple[str, ...] = ("start", "id")) -> list[dict[str, Any]]:
        return [{**_common(r), **{f: getattr(r, f) for f in fields}}
                for r in model.objects.filter(asset_id=pk).order_by(*order)]

    keyframes = [{**_common(k), "index": k.index, "time": k.time, "scene_index": k.scene_index,
                  "width": k.width, "height": k.height,
                  "thumbnail_url": links.keyframe_url(pk, k.index)}
                 for k in im.Keyframe.objects.filter(asset_id=pk).order_by("index")]
    hashes = [{**_common(h), "algorithm": h.algorithm, "hex": f"{int(h.hash, 2):064x}", "quality": h.quality,
               "keyframe_index": h.keyframe_index}
              for h in im.PerceptualHash.objects.filter(asset_id=pk).order_by("keyframe_index", "id")]
    return {
        "scenes": rows(im.Scene, "index", "start_frame", "end_frame", order=("index",)),
        "keyframes": keyframes,
        "transcript": rows(im.TranscriptSegment, "index", "text", "language", "confidence", order=("index",)),
        "ocr": rows(im.OcrText, "text", "confidence", "keyframe_index", "boxes"),
        "detections": rows(im.Detection, "detector", "label", "canonical", "confidence", "box", "keyframe_index"),
        "tags": rows(im.Tag, "label", "canonical", "score", "keyframe_index", order=("keyframe_index", "-score")),
        "labels": scene_labels(pk),
        "nsfw": rows(im.NsfwScore, "score", "keyframe_index", order=("keyframe_index", "id")),
        "text_flags": rows(im.TextSpanFlag, "source", "category", "score", "char_start", "char_end", "matched",
                           "ref_id", "method", order=("source", "ref_id", "char_start")),
        "language": rows(im.Language, "source", "language", "score", order=("source",)),
        "hashes": hashes,
        # face detection only (count and boxes per frame); never identity
        "faces": rows(im.FaceFrame, "keyframe_index", "count", "boxes", order=("keyframe_index", "id")),
    }
