"""Request id: taken from ``X-Request-ID`` when sane, else generated; echoed in the response.
Request size: a body declared larger than ``MEDIAINTEL_LIMITS["max_request_bytes"]`` is refused."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from apps.core.errors import error_body
from apps.core.logging import request_id

_SAFE = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        rid = incoming if _SAFE.match(incoming) else uuid.uuid4().hex
        request.request_id = rid  # type: ignore[attr-defined]
        # kept for the rest of the request's context: Django logs 4xx/5xx after the middleware returns
        request_id.set(rid)
        response = self.get_response(request)
        response["X-Request-ID"] = rid
        return response


class RequestSizeLimitMiddleware:
    """Refuse a request whose body is larger than the total cap with 413 (JSON error format),
    before any of the body is read.

    The per-file limit (``max_bytes``, in the upload handler) does not bound a multipart request
    with many files; this does, for every view. Django never reads past ``Content-Length``, so
    checking the declared length bounds what is read.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        cap = settings.MEDIAINTEL_LIMITS["max_request_bytes"]
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if declared > cap:
            resp = JsonResponse(error_body("request_too_large", f"The request body exceeds {cap} bytes.",
                                           {"max_request_bytes": cap, "content_length": declared}), status=413)
            resp["Content-Length"] = str(len(resp.content))
            return resp
        return self.get_response(request)
