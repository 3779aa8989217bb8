"""Search API: ``GET /api/v1/search/`` and ``POST /api/v1/search/similar/``."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiRequest, OpenApiResponse, extend_schema
from rest_framework import serializers as drf_serializers
from rest_framework import status
from rest_framework.parsers import FormParser, JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.errors import ApiError
from apps.core.parsers import MultiPartParser
from apps.core.roles import MODERATOR, has_role
from apps.search import query as search_sql
from apps.search import remote, services
from apps.search.serializers import (
    SearchQuerySerializer,
    SearchResponseSerializer,
    SimilarFormQuerySerializer,
    SimilarJsonSerializer,
    SimilarQuerySerializer,
    SimilarResponseSerializer,
    SimilarUploadSerializer,
)

LIST_PARAMS = ("kind", "moderation", "tags", "language", "source")
MAX_IMAGE_BYTES = 25 * 1024 * 1024
UPLOAD_FIELDS = ("file", "image")  # the upload field is `file` everywhere; `image` is its earlier name here
_ERRORS = {400: OpenApiResponse(description="Invalid parameters: `{\"error\": {code, message, detail}}`"),
           403: OpenApiResponse(description="Not allowed (e.g. another uploader's assets)")}


def query_data(params: Any) -> dict[str, Any]:
    """A QueryDict (or dict) as serializer input: list parameters may repeat or be comma-separated."""
    data: dict[str, Any] = {}
    for key in params:
        values = params.getlist(key) if hasattr(params, "getlist") else [params[key]]
        if key in LIST_PARAMS:
            data[key] = ",".join(str(v) for v in values if v is not None)
        else:
            data[key] = values[-1] if values else ""
    return data


def validated(ser: drf_serializers.Serializer, request: Request) -> Any:
    """Validate and build the filters; errors in the API's format. Uploaders are confined to their assets."""
    if not ser.is_valid():
        raise ApiError("The search request is invalid.", code="invalid", detail=ser.errors)
    moderator = has_role(request.user, MODERATOR)
    try:
        filters = ser.filters(request.user, is_moderator=moderator)
    except drf_serializers.ValidationError as e:
        raise ApiError("The search request is invalid.", code="invalid", detail=e.detail) from None
    if not moderator and filters.uploader_id not in (None, request.user.pk):
        raise ApiError("Only moderators can search other uploaders' assets.", code="forbidden", status_code=403)
    return filters


class SearchView(APIView):
    """Find moments in the library by meaning, words, or both."""

    throttle_scope = "search"  # a worker embeds the query while this web worker waits

    @extend_schema(
        operation_id="search",
        parameters=[SearchQuerySerializer],
        responses={200: SearchResponseSerializer, **_ERRORS},
    )
    def get(self, request: Request) -> Response:
        """Search transcripts (time-coded windows), on-screen text (OCR), text assets and image tags/labels.

        ``mode=hybrid`` (default) fuses the semantic and the full-text rankings by reciprocal rank
        (k=60); ``semantic`` ranks by meaning (the query is embedded by a worker with the engine
        that built the index); ``text`` by PostgreSQL full-text search, stemmed per the text's
        language. When no worker answers within the timeout, semantic and hybrid searches return
        full-text results with ``degraded: true``. Results are grouped by asset (``limit`` and
        ``offset`` count assets), each with its best moments: source, time range, highlighted
        snippet, nearest keyframe thumbnail and a console link at that second. Uploaders search
        their own assets; moderators and admins search everything.
        """
        ser = SearchQuerySerializer(data=query_data(request.query_params), context={"text_input": True})
        filters = validated(ser, request)
        d = ser.validated_data
        body = services.search(services.SearchParams(q=d["q"], mode=d["mode"], filters=filters, limit=d["limit"],
                                                     offset=d["offset"], moments=d["moments"]))
        return Response(body)


class SimilarView(APIView):
    """Look-alike search: similar images and keyframes, near-duplicates."""

    parser_classes = [MultiPartParser, FormParser, JSONParser]
    throttle_scope = "similar"  # a worker analyses the image while this web worker waits

    @extend_schema(
        operation_id="search_similar",
        request={"multipart/form-data": OpenApiRequest(SimilarUploadSerializer,
                                                       encoding={"file": {"contentType": "image/*"}}),
                 "application/json": SimilarJsonSerializer},
        responses={200: SimilarResponseSerializer, **_ERRORS,
                   404: OpenApiResponse(description="No such asset (or not yours)"),
                   503: OpenApiResponse(description="No worker could analyse the query image in time")},
    )
    def post(self, request: Request) -> Response:
        """Assets that look like an uploaded image (``file``; ``image`` is an alias) or a stored ``asset_id``.

        ``mode=pdq`` finds near-duplicates by PDQ Hamming distance (≤ ``threshold``, default 31;
        hashes of quality ≥ ``min_quality``, default 50); ``embedding`` ranks by the cosine
        similarity of EfficientNet image embeddings; ``both`` (default) lists near-duplicates
        first, then look-alikes. An uploaded image is analysed by a worker (same engines as the
        pipeline); an asset's stored hashes and embeddings are used as they are.
        """
        if not isinstance(request.data, dict):  # a QueryDict (form) is a dict too
            raise ApiError("The request body must be a JSON object (or a form).", code="invalid",
                           detail={"body": [f"expected an object, got {type(request.data).__name__}"]})
        data = query_data(request.data) if hasattr(request.data, "getlist") else dict(request.data)
        uploads = [request.FILES[k] for k in UPLOAD_FIELDS if k in request.FILES]
        if len(uploads) > 1:
            raise ApiError("Send the query image once, as `file`.", code="invalid",
                           detail={"file": ["given twice (as `file` and as its alias `image`)"]})
        data.pop("image", None)
        if uploads:
            data["file"] = uploads[0]
        deprecated = "image" in request.FILES
        form = hasattr(request.data, "getlist")
        ser = (SimilarFormQuerySerializer if form else SimilarQuerySerializer)(data=data, context={"text_input": form})
        filters = validated(ser, request)
        d = ser.validated_data
        if d.get("asset_id"):
            asset = search_sql.visible_assets(request.user).filter(pk=d["asset_id"]).first()
            if asset is None:
                raise ApiError("No such asset.", code="not_found", status_code=status.HTTP_404_NOT_FOUND)
            query = services.query_from_asset(asset)
        else:
            upload = d["file"]
            if upload.size > MAX_IMAGE_BYTES:
                raise ApiError("The query image is too large.", code="too_large", status_code=413,
                               detail={"max_bytes": MAX_IMAGE_BYTES})
            pil = getattr(upload, "image", None)  # set by the ImageField's Pillow check (header only)
            w, h = pil.size if pil is not None else (0, 0)
            if w * h > settings.MEDIAINTEL_LIMITS["max_pixels"]:
                raise ApiError("The query image has too many pixels.", code="too_large", status_code=413)
            upload.seek(0)
            try:
                analysis = remote.analyse_image(upload.read())
            except remote.RemoteUnavailable as e:
                if e.code == "invalid_image":
                    raise ApiError("The query image cannot be read.", code="invalid_image",
                                   detail={"reason": str(e)}) from None
                raise ApiError("No worker could analyse the image in time; retry later.", code="search_unavailable",
                               status_code=503, detail={"reason": str(e)}, headers={"Retry-After": "5"}) from None
            query = services.query_from_analysis(analysis)
        body = services.similar(query, mode=d["mode"], filters=filters, limit=d["limit"], offset=d["offset"],
                                threshold=d["threshold"], min_quality=d["min_quality"], moments=d["moments"])
        return Response(body, headers={"Deprecation": "true"} if deprecated else None)
