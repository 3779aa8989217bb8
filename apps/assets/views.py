"""The asset API: upload, list, detail, content with Range, delete."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseNotModified,
    HttpResponseRedirect,
    JsonResponse,
    StreamingHttpResponse,
)
from django.urls import reverse
from django.utils.http import content_disposition_header
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiRequest, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser
from rest_framework.request import Request
from rest_framework.response import Response

from apps.assets import content as content_policy
from apps.assets import storage
from apps.assets.actions import delete_asset
from apps.assets.filters import AssetFilter
from apps.assets.models import IdempotencyRecord, MediaAsset
from apps.assets.serializers import AssetDetailSerializer, AssetSerializer, UploadSerializer
from apps.assets.services import ingest_path
from apps.assets.sniff import ACCEPTED, Rejected
from apps.assets.upload import RawFileParser
from apps.audit.services import Actor
from apps.core.errors import ApiError, error_body
from apps.core.negotiation import HtmlRenderer, JsonErrors, KnownFormatNegotiation
from apps.core.openapi import AutoSchema, body_required
from apps.core.parsers import MultiPartParser
from apps.core.roles import MODERATOR, IsAdmin, IsModerator, IsUploader, has_role
from apps.core.schema import generating_schema
from apps.insights import exports as _transcript_exports
from apps.insights.serializers import InsightsSerializer
from apps.pipeline.serializers import ReprocessResultSerializer, ReprocessSerializer

_CONTENT_SALT = "mediaintel.assets.content"
STREAM_CHUNK = 256 * 1024


class AssetViewSet(JsonErrors, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin,
                   viewsets.GenericViewSet):
    """Media assets. Uploaders see their own; moderators and admins see everything."""

    filterset_class = AssetFilter
    ordering_fields = ["created_at", "updated_at", "processed_at", "title", "size", "duration", "kind", "status"]
    ordering = ["-created_at"]
    parser_classes = [MultiPartParser, FormParser, RawFileParser]
    schema = AutoSchema()  # an upload's body is required

    queryset = MediaAsset.objects.none()

    def get_queryset(self) -> QuerySet[MediaAsset]:
        if generating_schema(self):
            return MediaAsset.objects.none()
        qs = MediaAsset.objects.select_related("uploader")
        if not has_role(self.request.user, MODERATOR):
            qs = qs.filter(uploader=self.request.user)
        return qs

    def get_serializer_class(self) -> type:
        if self.action == "create":
            return UploadSerializer
        return AssetDetailSerializer if self.action == "retrieve" else AssetSerializer

    def get_throttles(self) -> list[Any]:
        self.throttle_scope = "upload" if self.action == "create" else None  # uploads: their own rate too
        return super().get_throttles()

    def get_permissions(self) -> list[Any]:
        perms = super().get_permissions()
        if self.action == "create":
            perms.append(IsUploader())
        if self.action == "destroy":
            perms.append(IsAdmin())
        if self.action in ("reprocess", "report"):
            perms.append(IsModerator())
        return perms

    @extend_schema(
        request={"multipart/form-data": OpenApiRequest(UploadSerializer, encoding={"file": {"contentType": ACCEPTED}}),
                 "application/octet-stream": OpenApiTypes.BINARY},
        parameters=[OpenApiParameter("Idempotency-Key", OpenApiTypes.STR, OpenApiParameter.HEADER,
                                     description="Retrying with the same key returns the first response."),
                    OpenApiParameter("Content-Disposition", OpenApiTypes.STR, OpenApiParameter.HEADER,
                                     description='Raw (octet-stream) uploads: `attachment; filename="…"` '
                                                 '(optional: without it the file is named `upload`).'),
                    *(OpenApiParameter(f, OpenApiTypes.STR, OpenApiParameter.QUERY,
                                       description="Raw (octet-stream) uploads only.")
                      for f in ("title", "external_id")),
                    OpenApiParameter("metadata", {"type": "string", "contentMediaType": "application/json",
                                                  "contentSchema": {"type": "object"}}, OpenApiParameter.QUERY,
                                     description="Raw (octet-stream) uploads only: a JSON object's text "
                                                 "(empty: none).")],
        responses={201: AssetSerializer, 200: OpenApiResponse(AssetSerializer, description="Duplicate content"),
                   413: OpenApiResponse(description="Too large"), 415: OpenApiResponse(description="Unsupported"),
                   422: OpenApiResponse(description="Corrupt"), 503: OpenApiResponse(description="Saturated")},
    )
    @body_required
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Upload a file; the same bytes twice give the existing asset (200, ``duplicate: true``).

        Multipart (``file`` plus optional fields), or the raw body with ``Content-Type:
        application/octet-stream`` and the name in ``Content-Disposition`` (no multipart parsing).
        """
        key = request.headers.get("Idempotency-Key", "").strip()[:255]
        if key:
            prior = IdempotencyRecord.objects.filter(user=request.user, key=key).first()
            if prior:
                return Response(prior.body, status=prior.status_code, headers={"Idempotent-Replayed": "true"})
        from apps.pipeline.backpressure import saturation

        busy = saturation()
        if busy is not None:
            raise ApiError(f"The pipeline is saturated ({busy}); retry later.", code="saturated",
                           status_code=503, headers={"Retry-After": "30"})
        if getattr(request._request, "upload_too_large", False):
            raise ApiError("The file exceeds the size limit.", code="too_large", status_code=413)
        ser = UploadSerializer(data=request.data)
        if not ser.is_valid():
            if getattr(request._request, "upload_too_large", False):
                raise ApiError("The file exceeds the size limit.", code="too_large", status_code=413)
            raise ApiError("The upload is invalid.", code="invalid", detail=ser.errors)
        up = ser.validated_data["file"]
        path = up.temporary_file_path()
        try:
            result = ingest_path(
                path, sha256=up.sha256, size=up.size, filename=up.name or "", title=ser.validated_data.get("title", ""),
                external_id=ser.validated_data.get("external_id", ""), metadata=ser.validated_data.get("metadata"),
                uploader=request.user, move=True, declared_type=getattr(up, "content_type", "") or "",
            )
        except Rejected as e:
            raise ApiError(e.message, code=e.code, status_code=e.status, detail=e.detail) from None
        finally:
            up.close()
        body = {**AssetSerializer(result.asset).data, "duplicate": result.duplicate}
        code = status.HTTP_200_OK if result.duplicate else status.HTTP_201_CREATED
        if key:
            try:
                with transaction.atomic():
                    IdempotencyRecord.objects.create(user=request.user, key=key, status_code=code, body=body)
            except IntegrityError:
                prior = IdempotencyRecord.objects.get(user=request.user, key=key)
                return Response(prior.body, status=prior.status_code, headers={"Idempotent-Replayed": "true"})
        return Response(body, status=code)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Delete an asset, its derived data and (when unreferenced) its blob. Admins only; audited."""
        delete_asset(self.get_object(), actor=Actor.user(request.user))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses={200: OpenApiResponse(InsightsSerializer, description=(
        "Scenes, keyframes, transcript, OCR, detections, tags, scene labels, NSFW scores, faces (count and "
        "boxes per frame; detection only), text flags, language and hashes: one typed list per kind"))})
    @action(detail=True, methods=["get"])
    def insights(self, request: Request, pk: str | None = None) -> Response:
        """Everything analysis produced for this asset, each row with its engine version and time range."""
        from apps.insights.serializers import insights_of

        return Response(insights_of(self.get_object()))

    @extend_schema(
        parameters=[OpenApiParameter("format", OpenApiTypes.STR, OpenApiParameter.QUERY, enum=["json", "srt", "vtt"],
                                     description="Or a `.vtt`/`.srt`/`.json` suffix, or the Accept header.")],
        responses={(200, "text/vtt"): OpenApiTypes.STR, (200, "application/x-subrip"): OpenApiTypes.STR,
                   (200, "application/json"): OpenApiTypes.OBJECT,
                   404: OpenApiResponse(description="No such asset, no audio, or unknown format"),
                   406: OpenApiResponse(description="No acceptable format")})
    @action(detail=True, methods=["get"], url_path="transcript",
            renderer_classes=_transcript_exports.RENDERERS,
            content_negotiation_class=KnownFormatNegotiation)
    def transcript(self, request: Request, pk: str | None = None, format: str | None = None) -> Response:
        """The transcript as WebVTT, SubRip or JSON cues (at most 42 characters × 2 lines, 1–7 s each).

        Same permissions as ``insights``. Errors are JSON whatever format was asked for.
        """
        asset = self.get_object()
        if asset.kind not in ("video", "audio"):
            raise ApiError(f"A {asset.kind} asset has no transcript.", code="no_transcript", status_code=404)
        renderer = request.accepted_renderer
        fmt = renderer.format
        body = _transcript_exports.transcript_export(asset, fmt)
        # an empty SubRip file is text too (DRF would drop the Content-Type of an empty body)
        resp = Response(body) if fmt == "json" else \
            HttpResponse(body, content_type=f"{renderer.media_type}; charset={renderer.charset}")
        resp["Content-Disposition"] = content_disposition_header(False, f"{asset.pk}.{fmt}")
        resp["X-Content-Type-Options"] = "nosniff"
        resp["Cache-Control"] = "private, no-cache"
        return resp

    @extend_schema(responses={(200, "text/html"): OpenApiTypes.STR})
    @action(detail=True, methods=["get"], renderer_classes=[HtmlRenderer],
            content_negotiation_class=KnownFormatNegotiation)
    def report(self, request: Request, pk: str | None = None, format: str | None = None) -> Response:
        """The printable per-asset report (HTML): keyframes, timeline of flags, transcript, decisions and
        statements of reasons. Moderators and admins."""
        from apps.moderation.report import guard, render_report

        resp = guard(Response(render_report(self.get_object()), content_type="text/html; charset=utf-8"))
        resp["Content-Disposition"] = content_disposition_header(False, f"report-{pk}.html")
        return resp

    @extend_schema(responses={(200, "image/jpeg"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"], url_path=r"keyframes/(?P<index>\d+)\.jpg")
    def keyframe(self, request: Request, pk: str | None = None, index: str = "0") -> HttpResponse:
        """The stored JPEG thumbnail of one keyframe."""
        from apps.insights.models import Keyframe

        asset = self.get_object()
        kf = Keyframe.objects.filter(asset=asset, index=int(index)).only("thumbnail").first()
        if kf is None:
            raise ApiError(f"Keyframe {index} does not exist for this asset.", code="not_found", status_code=404)
        resp = HttpResponse(bytes(kf.thumbnail), content_type="image/jpeg")
        resp["Cache-Control"] = "private, max-age=3600"
        return resp

    @extend_schema(request=ReprocessSerializer,
                   responses={202: OpenApiResponse(ReprocessResultSerializer, description="Job started"),
                              200: OpenApiResponse(ReprocessResultSerializer, description="Nothing to do")})
    @action(detail=True, methods=["post"], parser_classes=[JSONParser, FormParser, MultiPartParser])
    def reprocess(self, request: Request, pk: str | None = None) -> Response:
        """Re-run stages of this asset: ``mode`` missing | stale | failed | all, optionally only ``stages``."""
        from apps.pipeline import plans
        from apps.pipeline.actions import reprocess_asset

        asset = self.get_object()
        ser = ReprocessSerializer(data=request.data)
        if not ser.is_valid():
            raise ApiError("The reprocess request is invalid.", code="invalid", detail=ser.errors)
        mode, stages = ser.validated_data["mode"], ser.validated_data.get("stages") or []
        known = {s.name for s in plans.plan_for(asset.kind)}
        if unknown := sorted(set(stages) - known):
            raise ApiError(f"Unknown stage(s) for a {asset.kind}: {', '.join(unknown)}.", code="unknown_stage",
                           status_code=409, detail={"stages": sorted(known)})
        selected, jobs = reprocess_asset(asset.pk, mode=mode, stages=stages, actor=Actor.user(request.user))
        if not selected:
            return Response({"started": False, "stages": [], "detail": "nothing needs to run"}, status=200)
        return Response({"started": bool(jobs), "stages": selected}, status=202)

    @extend_schema(responses={(200, "*/*"): OpenApiResponse(OpenApiTypes.BINARY, description="The original bytes, "
                                                         "with the asset's sniffed media type"),
                              206: OpenApiResponse(description="Partial content"),
                              302: OpenApiResponse(description="Redirect to the content origin (when configured)"),
                              304: OpenApiResponse(description="Not modified"),
                              416: OpenApiResponse(description="Range not satisfiable: it starts at or beyond "
                                                               "the end (`Content-Range: bytes */size`)")},
                   parameters=[OpenApiParameter("Range", OpenApiTypes.STR, OpenApiParameter.HEADER)])
    @action(detail=True, methods=["get"], url_path="content")
    def content(self, request: Request, pk: str | None = None) -> HttpResponse:
        """The original bytes, inert (see ``apps.assets.content``); honours a single ``Range: bytes=a-b``.

        With ``MEDIAINTEL_CONTENT_ORIGIN`` set, answers a redirect to a short-lived signed URL
        on that separate origin instead of serving the bytes on the application's own.
        """
        asset = self.get_object()
        if settings.MEDIAINTEL_CONTENT_ORIGIN:
            resp = HttpResponseRedirect(signed_content_url(asset))
            resp["Cache-Control"] = "private, no-store"
            return resp
        return serve_content(request, asset)


def signed_content_url(asset: MediaAsset) -> str:
    """An absolute URL of the asset's bytes on the content origin, valid ``MEDIAINTEL_CONTENT_URL_TTL`` seconds."""
    token = signing.dumps(str(asset.pk), salt=_CONTENT_SALT)
    return settings.MEDIAINTEL_CONTENT_ORIGIN.rstrip("/") + reverse("asset-signed-content", args=[token])


def signed_content(request: HttpRequest, token: str) -> HttpResponse:
    """Bytes for a signed URL, answered only on the content origin's host (404 anywhere else)."""
    origin = settings.MEDIAINTEL_CONTENT_ORIGIN
    if not origin or request.get_host().lower() != (urlsplit(origin).netloc or "").lower():
        return _not_found()
    try:
        pk = signing.loads(token, salt=_CONTENT_SALT, max_age=settings.MEDIAINTEL_CONTENT_URL_TTL)
    except signing.BadSignature:
        return _not_found()
    asset = MediaAsset.objects.filter(pk=pk).first()
    if asset is None:
        return _not_found()
    return serve_content(request, asset)


def serve_content(request: HttpRequest, asset: MediaAsset) -> HttpResponse:
    """Stream an asset's bytes with the inert headers of :mod:`apps.assets.content` on every status."""
    etag = f'"{asset.sha256}"'
    if etag in [t.strip() for t in request.headers.get("If-None-Match", "").split(",")]:
        resp: HttpResponse = HttpResponseNotModified()
        resp["ETag"] = etag
        content_policy.guard(resp)
        return resp
    size = storage.blob_size(asset.storage_key)
    try:
        rng = content_policy.parse_range(request.headers.get("Range", ""), size)
    except content_policy.Unsatisfiable:
        return _unsatisfiable(size)
    start, end = rng if rng is not None else (0, size - 1)
    length = end - start + 1
    serving = content_policy.serving_for(asset)
    resp = StreamingHttpResponse(storage.open_range(asset.storage_key, start, length, STREAM_CHUNK),
                                 status=206 if rng is not None else 200, content_type=serving.content_type)
    resp["Content-Length"] = str(length)
    resp["Accept-Ranges"] = "bytes"
    resp["ETag"] = etag
    resp["Cache-Control"] = "private, max-age=3600"
    resp["Content-Disposition"] = content_disposition_header(
        not serving.inline, os.path.basename(asset.filename) or asset.sha256)
    if rng is not None:
        resp["Content-Range"] = f"bytes {start}-{end}/{size}"
    content_policy.guard(resp)
    return resp


def _not_found() -> HttpResponse:
    resp = JsonResponse(error_body("not_found", "No such content."), status=404)
    content_policy.guard(resp)
    return resp


def _unsatisfiable(size: int) -> HttpResponse:
    resp = JsonResponse(error_body("range_not_satisfiable", f"The range starts at or beyond the end of the "
                                   f"{size}-byte content.", {"size": size}), status=416)
    resp["Content-Range"] = f"bytes */{size}"
    content_policy.guard(resp)
    return resp
