"""Insight rows. Each carries its asset, the stage and engine version that produced it, and
where in the media it applies (time range or frame). A stage's rows are replaced as a whole,
in the transaction that marks the stage done, so a re-run never duplicates them.
"""

from __future__ import annotations

from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVectorField
from django.db import models
from pgvector.django import BitField, HalfVectorField, HnswIndex, VectorField

from apps.assets.models import MediaAsset


class Insight(models.Model):
    id = models.BigAutoField(primary_key=True)
    asset = models.ForeignKey(MediaAsset, on_delete=models.CASCADE, related_name="+")
    stage = models.CharField(max_length=32)
    engine = models.CharField(max_length=64)
    engine_version = models.CharField(max_length=128)
    start = models.FloatField(null=True, blank=True, help_text="seconds")
    end = models.FloatField(null=True, blank=True, help_text="seconds")

    class Meta:
        abstract = True
        ordering = ["asset", "start", "id"]

    def __str__(self) -> str:
        return f"{type(self).__name__} of {self.asset_id} [{self.start}-{self.end}] by {self.engine_version}"


class Scene(Insight):
    index = models.PositiveIntegerField()
    start_frame = models.IntegerField()
    end_frame = models.IntegerField()


class Keyframe(Insight):
    index = models.PositiveIntegerField()
    frame_index = models.IntegerField()
    scene_index = models.IntegerField()
    time = models.FloatField()
    width = models.IntegerField()
    height = models.IntegerField()
    storage_key = models.CharField(max_length=200, help_text="analysis-size JPEG in blob storage")
    thumbnail = models.BinaryField(help_text="small JPEG for the console")


class TranscriptSegment(Insight):
    index = models.PositiveIntegerField()
    text = models.TextField()
    language = models.CharField(max_length=12, blank=True)
    confidence = models.FloatField(null=True)


class OcrText(Insight):
    text = models.TextField()
    confidence = models.FloatField(null=True)
    keyframe_index = models.IntegerField(null=True)
    boxes = models.JSONField(default=list)


class Detection(Insight):
    detector = models.CharField(max_length=32, help_text="nudity | objects")
    label = models.CharField(max_length=100, db_index=True)
    canonical = models.CharField(max_length=100, db_index=True, default="",
                                 help_text="concept in mediacommon.vocabulary (objects); '' for nudity classes")
    confidence = models.FloatField()
    keyframe_index = models.IntegerField(null=True)
    box = models.JSONField(help_text="[x1, y1, x2, y2] normalised 0..1")


class Tag(Insight):
    label = models.CharField(max_length=100, db_index=True)
    canonical = models.CharField(max_length=100, db_index=True, default="",
                                 help_text="concept in mediacommon.vocabulary (e.g. 'German shepherd' -> 'dog')")
    score = models.FloatField()
    keyframe_index = models.IntegerField(null=True)


class NsfwScore(Insight):
    score = models.FloatField()
    keyframe_index = models.IntegerField(null=True)


class TextSpanFlag(Insight):
    source = models.CharField(max_length=16, help_text="transcript | ocr | text")
    category = models.CharField(max_length=32, db_index=True)
    score = models.FloatField()
    char_start = models.IntegerField()
    char_end = models.IntegerField()
    matched = models.CharField(max_length=300)
    ref_id = models.BigIntegerField(null=True, help_text="id of the transcript/ocr/text row")
    method = models.CharField(max_length=16, default="lexicon")


class Language(Insight):
    source = models.CharField(max_length=16)
    language = models.CharField(max_length=12)
    score = models.FloatField()


class PerceptualHash(Insight):
    algorithm = models.CharField(max_length=16, default="pdq")
    hash = BitField(length=256)
    quality = models.IntegerField()
    keyframe_index = models.IntegerField(null=True)

    class Meta(Insight.Meta):
        indexes = [HnswIndex(name="phash_hnsw_hamming", fields=["hash"], m=16, ef_construction=64,
                             opclasses=["bit_hamming_ops"])]


class TextChunk(Insight):
    """A searchable piece of text (transcript window, OCR span, text chunk, tags) and its embedding."""

    source = models.CharField(max_length=16, help_text="transcript | ocr | text | tags")
    text = models.TextField()
    char_start = models.IntegerField(null=True)
    char_end = models.IntegerField(null=True)
    language = models.CharField(max_length=12, blank=True)
    embedding = VectorField(dimensions=384, null=True)
    tsv = SearchVectorField(null=True)

    class Meta(Insight.Meta):
        indexes = [
            HnswIndex(name="textchunk_hnsw_cosine", fields=["embedding"], m=16, ef_construction=64,
                      opclasses=["vector_cosine_ops"]),
            GinIndex(name="textchunk_tsv_gin", fields=["tsv"]),
        ]


class ImageEmbedding(Insight):
    """Per image/keyframe embedding (EfficientNet-Lite0 1280-d as halfvec; CLIP when configured)."""

    model = models.CharField(max_length=64)
    keyframe_index = models.IntegerField(null=True)
    embedding = HalfVectorField(dimensions=1280)

    class Meta(Insight.Meta):
        indexes = [HnswIndex(name="imageemb_hnsw_cosine", fields=["embedding"], m=16, ef_construction=64,
                             opclasses=["halfvec_cosine_ops"])]


class FaceFrame(Insight):
    """The faces detected in one keyframe (or the image itself: ``keyframe_index`` None).

    One row per analysed frame, also when ``count`` is 0, so "no faces" differs from "not analysed".
    ``boxes``: ``[{"box": [x1, y1, x2, y2] normalised 0..1, "confidence": 0..1}, …]``, best first;
    ``count == len(boxes)``. Detection only: no embedding or identity is ever stored.
    """

    keyframe_index = models.IntegerField(null=True)
    count = models.PositiveIntegerField()
    boxes = models.JSONField(default=list)
