"""Read-only representations of an asset's insights."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

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


# ------------------------------------------------------------------ the documented shape (schema only)
# ``insights_of`` builds the body; these serializers describe it, one per kind of insight, for the
# OpenAPI document (``GET /api/v1/assets/{id}/insights/``). Every row has the common fields.

class InsightRowSerializer(serializers.Serializer):
    start = serializers.FloatField(allow_null=True, help_text="seconds from the start (null: the whole asset)")
    end = serializers.FloatField(allow_null=True, help_text="seconds")
    engine = serializers.CharField(help_text="the engine that produced the row")
    engine_version = serializers.CharField()


class SceneInsightSerializer(InsightRowSerializer):
    index = serializers.IntegerField()
    start_frame = serializers.IntegerField()
    end_frame = serializers.IntegerField()


class KeyframeInsightSerializer(InsightRowSerializer):
    index = serializers.IntegerField()
    time = serializers.FloatField(help_text="seconds")
    scene_index = serializers.IntegerField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    thumbnail_url = serializers.CharField(help_text="the keyframe as a JPEG (same permissions as the asset)")


class TranscriptInsightSerializer(InsightRowSerializer):
    index = serializers.IntegerField()
    text = serializers.CharField()
    language = serializers.CharField(help_text="BCP 47 code; empty when unknown")
    confidence = serializers.FloatField(allow_null=True)


class OcrInsightSerializer(InsightRowSerializer):
    text = serializers.CharField()
    confidence = serializers.FloatField(allow_null=True)
    keyframe_index = serializers.IntegerField(allow_null=True, help_text="null for an image or a text asset")
    boxes = serializers.ListField(child=serializers.JSONField(), help_text="where the text was read, per line")


class DetectionInsightSerializer(InsightRowSerializer):
    detector = serializers.CharField(help_text="`objects` (COCO) or `nudity`")
    label = serializers.CharField(help_text="the detector's own label")
    canonical = serializers.CharField(help_text="the label's concept in the vocabulary (e.g. `dog`)")
    confidence = serializers.FloatField()
    box = serializers.ListField(child=serializers.FloatField(), help_text="[x1, y1, x2, y2], normalised 0..1")
    keyframe_index = serializers.IntegerField(allow_null=True)


class TagInsightSerializer(InsightRowSerializer):
    label = serializers.CharField(help_text="ImageNet class")
    canonical = serializers.CharField()
    score = serializers.FloatField()
    keyframe_index = serializers.IntegerField(allow_null=True)


class SceneLabelSerializer(serializers.Serializer):
    label = serializers.CharField(help_text="a concept (e.g. `dog`)")
    ancestors = serializers.ListField(child=serializers.CharField(), help_text="e.g. `mammal`, `animal`")
    raw = serializers.ListField(child=serializers.CharField(), help_text="the detector and tagger labels merged")
    scene_index = serializers.IntegerField(allow_null=True)
    start = serializers.FloatField(allow_null=True)
    end = serializers.FloatField(allow_null=True)
    confidence = serializers.FloatField()
    keyframes = serializers.ListField(child=serializers.IntegerField())


class NsfwInsightSerializer(InsightRowSerializer):
    score = serializers.FloatField(help_text="0..1")
    keyframe_index = serializers.IntegerField(allow_null=True)


class TextFlagInsightSerializer(InsightRowSerializer):
    source = serializers.CharField(help_text="`transcript`, `ocr` or `text`")
    category = serializers.CharField(help_text="a taxonomy code, e.g. `harassment/threat`")
    score = serializers.FloatField()
    char_start = serializers.IntegerField()
    char_end = serializers.IntegerField()
    matched = serializers.CharField()
    ref_id = serializers.IntegerField(allow_null=True, help_text="the transcript/OCR/text row the span lies in")
    method = serializers.CharField(help_text="`lexicon` or a classifier")


class LanguageInsightSerializer(InsightRowSerializer):
    source = serializers.CharField()
    language = serializers.CharField()
    score = serializers.FloatField()


class HashInsightSerializer(InsightRowSerializer):
    algorithm = serializers.CharField(help_text="`pdq`")
    hex = serializers.CharField(help_text="64 hex digits")
    quality = serializers.IntegerField(help_text="0..100")
    keyframe_index = serializers.IntegerField(allow_null=True)


class FaceInsightSerializer(InsightRowSerializer):
    keyframe_index = serializers.IntegerField(allow_null=True)
    count = serializers.IntegerField()
    boxes = serializers.ListField(child=serializers.JSONField(),
                                  help_text='`{"box": [x1, y1, x2, y2], "confidence": 0..1}`, best first')


class InsightsSerializer(serializers.Serializer):
    """What ``insights_of`` answers: one list per kind of insight (empty when the asset's plan has no
    such stage or it has not run yet)."""

    scenes = SceneInsightSerializer(many=True)
    keyframes = KeyframeInsightSerializer(many=True)
    transcript = TranscriptInsightSerializer(many=True)
    ocr = OcrInsightSerializer(many=True)
    detections = DetectionInsightSerializer(many=True)
    tags = TagInsightSerializer(many=True)
    labels = SceneLabelSerializer(many=True, help_text="object and tag labels aggregated per scene")
    nsfw = NsfwInsightSerializer(many=True)
    text_flags = TextFlagInsightSerializer(many=True)
    language = LanguageInsightSerializer(many=True)
    hashes = HashInsightSerializer(many=True)
    faces = FaceInsightSerializer(many=True, help_text="face detection only: count and boxes, never identity")
