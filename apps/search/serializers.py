"""Search API: query validation (→ :class:`~apps.search.filters.Filters`) and response shapes (for the schema)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.utils import timezone
from drf_spectacular.drainage import set_override
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.assets.models import Kind, ModerationState
from apps.core.fields import FormBooleanField, StrictBooleanField, StrictCharField, text_input
from apps.search import services
from apps.search.filters import Filters

LIST_HELP = " Comma-separated, or the parameter repeated."


def _split(value: Any) -> list[str]:
    if value in (None, ""):
        return []
    items = value if isinstance(value, list | tuple) else [value]
    return [p.strip() for item in items for p in str(item).split(",") if p.strip()]


#: the uploader filter's value for a name or id no user has: no asset matches it (ids start at 1)
NO_USER = 0


class CsvField(serializers.CharField):
    """A comma-separated list (or a repeated parameter), optionally restricted to ``choices``.

    Documented as a string, so in a JSON body it takes a JSON string only (an object, array or
    number is a 400 naming the field); a query string or form gives text anyway.
    """

    def __init__(self, *, choices: tuple[str, ...] = (), **kw: Any) -> None:
        self.allowed = choices
        super().__init__(required=False, allow_blank=True, **kw)
        if choices:  # documented as what it takes: a comma-separated list of the choices (or empty: blank)
            one = "(" + "|".join(re.escape(c) for c in choices) + ")"
            set_override(self, "field", {"type": "string", "pattern": f"^{one}(,{one})*$"})

    def to_internal_value(self, data: Any) -> list[str]:  # type: ignore[override]
        if not isinstance(data, str) and not text_input(self):
            self.fail("invalid")
        items = _split(data)
        if self.allowed:
            bad = sorted(set(items) - set(self.allowed))
            if bad:
                raise serializers.ValidationError(f"unknown value(s) {', '.join(bad)}; choose from "
                                                  f"{', '.join(self.allowed)}")
        for item in items:
            if len(item) > 100:
                raise serializers.ValidationError("values are limited to 100 characters")
        return items


@extend_schema_field({"type": "string", "pattern": "^(embedding|pdq|both)$", "default": "both"})
class SimilarModeField(serializers.ChoiceField):
    """``embedding | pdq | both`` (documented as a pattern: ``mode`` enums of other endpoints differ)."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(choices=services.SIMILAR_MODES, default="both", **kw)


@extend_schema_field({"anyOf": [{"type": "string", "format": "date"}, {"type": "string", "format": "date-time"},
                               {"type": "string", "maxLength": 0}]})
class DateBoundField(serializers.CharField):
    """An ISO date (``2026-05-01``) or date-time with any RFC 3339 offset, compared in UTC; a date
    before-bound means the end of that day."""

    def __init__(self, *, end_of_day: bool = False, **kw: Any) -> None:
        self.end_of_day = end_of_day
        super().__init__(required=False, allow_blank=True, **kw)

    def to_internal_value(self, data: Any) -> dt.datetime | None:  # type: ignore[override]
        text = str(data).strip()
        if not text:
            return None
        try:
            if len(text) == 10:
                day = dt.date.fromisoformat(text)
                value = dt.datetime.combine(day + dt.timedelta(days=1 if self.end_of_day else 0), dt.time.min)
            else:
                value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise serializers.ValidationError("expected an ISO date (YYYY-MM-DD) or date-time") from None
        if timezone.is_naive(value):
            return timezone.make_aware(value, dt.UTC)
        try:  # in UTC: PostgreSQL refuses offsets of ±16:00 and more, which RFC 3339 allows
            return value.astimezone(dt.UTC)
        except OverflowError:
            return dt.datetime.min.replace(tzinfo=dt.UTC) if value.year == 1 else dt.datetime.max.replace(tzinfo=dt.UTC)


class _PillowImage(forms.ImageField):
    default_validators: list[Any] = []  # no file-name extension check: the bytes decide


class ImageContentField(serializers.ImageField):
    """An image judged by its bytes (Pillow opens it), whatever its file name: Django's field also
    requires an image extension, which refused a PNG uploaded as ``query`` or ``blob``."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(_DjangoImageField=_PillowImage, **kw)


class FilterFieldsMixin(serializers.Serializer):
    kind = CsvField(choices=tuple(Kind.values), help_text="Asset kinds: video, audio, image, text." + LIST_HELP)
    moderation = CsvField(choices=tuple(ModerationState.values),
                          help_text="Moderation states: pending, approved, in_review, blocked." + LIST_HELP)
    tags = CsvField(help_text="Image tags or detection labels the asset must have (any of them): a raw label "
                              "(\"German shepherd\") or a concept of the label vocabulary and everything under it "
                              "(\"dog\", \"animal\")." + LIST_HELP)
    has_speech = StrictBooleanField(required=False, allow_null=True, default=None,
                                          help_text="Only assets with (true) or without (false) a transcript.")
    uploader = StrictCharField(required=False, allow_blank=True, max_length=150,
                                     help_text="Username or user id (moderators; uploaders only see their own).")
    created_after = DateBoundField(help_text="Assets created at or after this ISO date/date-time.")
    created_before = DateBoundField(end_of_day=True,
                                    help_text="Assets created before this date-time (a date includes that day).")

    def filters(self, user: Any, *, is_moderator: bool) -> Filters:
        d = self.validated_data
        uploader_id = None
        if d.get("uploader"):
            u = d["uploader"]
            User = get_user_model()
            found = User.objects.filter(pk=int(u)).first() if u.isdigit() else None
            found = found or User.objects.filter(username=u).first()
            uploader_id = NO_USER if found is None else found.pk
        return Filters(kinds=tuple(d.get("kind") or ()), moderation=tuple(d.get("moderation") or ()),
                       languages=tuple(d.get("language") or ()), tags=tuple(d.get("tags") or ()),
                       sources=tuple(d.get("source") or ()), has_speech=d.get("has_speech"),
                       uploader_id=uploader_id, created_after=d.get("created_after"),
                       created_before=d.get("created_before"), visible_to=None if is_moderator else user.pk)


class SearchQuerySerializer(FilterFieldsMixin):
    q = serializers.CharField(max_length=1000, help_text="What to find: words, a phrase, a question.")
    mode = serializers.ChoiceField(choices=services.MODES, default="hybrid",
                                   help_text="hybrid (default: meaning and words, fused by reciprocal rank), "
                                             "semantic (meaning) or text (words).")
    language = CsvField(help_text="Language of the matching text (ISO 639-1, e.g. en, de)." + LIST_HELP)
    source = CsvField(choices=services.SOURCES, help_text="Where the text comes from: transcript, ocr, text, "
                                                          "tags." + LIST_HELP)
    limit = serializers.IntegerField(default=10, min_value=1, max_value=50, help_text="Assets per page.")
    offset = serializers.IntegerField(default=0, min_value=0, max_value=1000, help_text="Assets to skip.")
    moments = serializers.IntegerField(default=3, min_value=1, max_value=10, help_text="Best moments per asset.")

    def validate_q(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("the query is empty")
        return value


class SimilarQuerySerializer(FilterFieldsMixin):
    file = ImageContentField(required=False, help_text="A query image (multipart; `image` is accepted as an "
                                                            "alias, as before).")
    asset_id = serializers.UUIDField(required=False, help_text="Find assets that look like this one.")
    mode = SimilarModeField(help_text="embedding (look-alike), pdq (near-duplicates) or both.")
    threshold = serializers.IntegerField(default=services.PDQ_THRESHOLD, min_value=0, max_value=128,
                                         help_text="Largest PDQ Hamming distance counted as a near-duplicate.")
    min_quality = serializers.IntegerField(default=services.PDQ_MIN_QUALITY, min_value=0, max_value=100,
                                           help_text="Smallest PDQ quality a hash must have to match.")
    limit = serializers.IntegerField(default=10, min_value=1, max_value=50)
    offset = serializers.IntegerField(default=0, min_value=0, max_value=1000)
    moments = serializers.IntegerField(default=3, min_value=1, max_value=10)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if bool(attrs.get("file")) == bool(attrs.get("asset_id")):
            raise serializers.ValidationError("send either a file (multipart) or an asset_id")
        return attrs


class SimilarJsonSerializer(SimilarQuerySerializer):
    """JSON body of ``POST /search/similar/``: an asset id (filters as in ``GET /search/``)."""

    file = None
    asset_id = serializers.UUIDField(help_text="Find assets that look like this one.")


class SimilarFormQuerySerializer(SimilarQuerySerializer):
    """``POST /search/similar/`` as a form: a form has no null, so ``has_speech`` is left out for either."""

    has_speech = FormBooleanField(help_text="Only assets with (true) or without (false) a transcript; leave it "
                                            "out for either.")


class SimilarUploadSerializer(SimilarFormQuerySerializer):
    """Multipart body of ``POST /search/similar/``: a query image (filters as in ``GET /search/``)."""

    asset_id = None
    file = ImageContentField(help_text="A query image; a worker computes its embedding and PDQ hash. "
                                            "`image` is accepted as an alias (the field's earlier name).")


# --------------------------------------------------------------------------- responses (schema only)


class AssetSummarySerializer(serializers.Serializer):
    id = serializers.UUIDField()
    kind = serializers.CharField()
    title = serializers.CharField()
    filename = serializers.CharField()
    mime_type = serializers.CharField()
    duration = serializers.FloatField(allow_null=True)
    status = serializers.CharField()
    moderation_state = serializers.CharField()
    uploader = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()


class MomentSerializer(serializers.Serializer):
    chunk_id = serializers.IntegerField()
    source = serializers.CharField(help_text="transcript | ocr | text | tags")
    start = serializers.FloatField(allow_null=True, help_text="Seconds into the media (null: no time).")
    end = serializers.FloatField(allow_null=True)
    char_start = serializers.IntegerField(allow_null=True, help_text="Offset in a text asset.")
    char_end = serializers.IntegerField(allow_null=True)
    language = serializers.CharField()
    score = serializers.FloatField(help_text="RRF score (hybrid), cosine similarity (semantic) or ts_rank_cd.")
    similarity = serializers.FloatField(allow_null=True)
    text_rank = serializers.FloatField(allow_null=True)
    snippet = serializers.CharField()
    snippet_html = serializers.CharField(help_text="HTML-escaped snippet, matched words in <mark>.")
    matched_words = serializers.BooleanField()
    keyframe_index = serializers.IntegerField(allow_null=True)
    thumbnail_url = serializers.CharField(allow_null=True)
    url = serializers.CharField(help_text="Console page of the asset, at this moment.")


class SearchResultSerializer(serializers.Serializer):
    asset = AssetSummarySerializer()
    score = serializers.FloatField()
    thumbnail_url = serializers.CharField(allow_null=True)
    url = serializers.CharField()
    moments = MomentSerializer(many=True)


class SearchResponseSerializer(serializers.Serializer):
    query = serializers.CharField()
    mode = serializers.CharField(help_text="The mode asked for.")
    effective_mode = serializers.CharField(help_text="The mode that ran (text when semantic degraded).")
    degraded = serializers.BooleanField(help_text="True when no worker could embed the query in time.")
    degraded_reason = serializers.CharField(allow_null=True)
    query_vector_cache = serializers.CharField(required=False, help_text="miss | memory | redis")
    limit = serializers.IntegerField()
    offset = serializers.IntegerField()
    has_more = serializers.BooleanField()
    next_offset = serializers.IntegerField(allow_null=True)
    timing_ms = serializers.DictField(child=serializers.FloatField())
    results = SearchResultSerializer(many=True)


class SimilarMomentSerializer(serializers.Serializer):
    keyframe_index = serializers.IntegerField(allow_null=True)
    time = serializers.FloatField(allow_null=True)
    similarity = serializers.FloatField(allow_null=True, help_text="Cosine similarity of the image embeddings.")
    pdq_distance = serializers.IntegerField(allow_null=True, help_text="PDQ Hamming distance (within threshold).")
    near_duplicate = serializers.BooleanField()
    score = serializers.FloatField()
    thumbnail_url = serializers.CharField(allow_null=True)
    url = serializers.CharField()


class SimilarResultSerializer(serializers.Serializer):
    asset = AssetSummarySerializer()
    score = serializers.FloatField()
    near_duplicate = serializers.BooleanField()
    pdq_distance = serializers.IntegerField(allow_null=True)
    similarity = serializers.FloatField(allow_null=True)
    thumbnail_url = serializers.CharField(allow_null=True)
    url = serializers.CharField()
    moments = SimilarMomentSerializer(many=True)


class SimilarResponseSerializer(serializers.Serializer):
    mode = serializers.CharField()
    query = serializers.DictField(help_text="The query asset, or the uploaded image's PDQ hash, quality and tags.")
    threshold = serializers.IntegerField()
    min_quality = serializers.IntegerField()
    limit = serializers.IntegerField()
    offset = serializers.IntegerField()
    has_more = serializers.BooleanField()
    next_offset = serializers.IntegerField(allow_null=True)
    warnings = serializers.ListField(child=serializers.CharField())
    timing_ms = serializers.DictField(child=serializers.FloatField())
    results = SimilarResultSerializer(many=True)
