"""One JSON error format for the whole API: ``{"error": {"code", "message", "detail"}}``."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers, status
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


class ApiError(APIException):
    """An error with an explicit HTTP status and a stable machine-readable code."""

    def __init__(self, message: str, *, code: str, status_code: int = status.HTTP_400_BAD_REQUEST,
                 detail: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message, code)
        self.status_code = status_code
        self.error_code = code
        self.extra = detail or {}
        self.headers = headers or {}


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable machine-readable code, e.g. `invalid`, `not_found`, `not_dead`.")
    message = serializers.CharField(help_text="What went wrong, for people.")
    detail = serializers.JSONField(required=False, help_text="Per-field errors or facts about the refusal.")


class ErrorSerializer(serializers.Serializer):
    """The API's one error envelope (schema only): every 4xx/5xx body has this shape."""

    error = ErrorDetailSerializer()


def error_body(code: str, message: str, detail: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if detail:
        body["detail"] = detail
    return {"error": body}


def _only_uniqueness(detail: Any) -> bool:
    """True when every error in a validation error's detail is a uniqueness clash (code ``unique``):
    the request is well formed but names what another object already holds, a 409, not a 400."""
    if isinstance(detail, dict):
        return bool(detail) and all(_only_uniqueness(v) for v in detail.values())
    if isinstance(detail, list):
        return bool(detail) and all(_only_uniqueness(v) for v in detail)
    return getattr(detail, "code", None) == "unique"


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Wrap DRF's handler so every error body has the same shape."""
    if isinstance(exc, ApiError):
        resp = Response(error_body(exc.error_code, str(exc.detail), exc.extra), status=exc.status_code)
        for k, v in exc.headers.items():
            resp[k] = v
        return resp
    resp = drf_exception_handler(exc, context)
    if resp is None:
        return None
    data = resp.data
    code = getattr(exc, "default_code", "error")
    if isinstance(exc, ValidationError) and _only_uniqueness(exc.detail):
        resp.status_code = status.HTTP_409_CONFLICT
        resp.data = error_body("conflict", "The request conflicts with an existing object.", data)
        return resp
    if isinstance(data, dict) and set(data) == {"detail"}:
        message, detail = str(data["detail"]), None
        code = getattr(data["detail"], "code", code)
    else:
        message, detail = "The request is invalid.", data
        code = "invalid"
    resp.data = error_body(str(code), message, detail)
    return resp


def not_found(request: Any, exception: Exception | None = None) -> Any:
    """``handler404``: under ``/api/`` a path no route matches (e.g. a malformed id) answers in the
    error envelope like every other API error; elsewhere Django's own page."""
    from django.http import JsonResponse
    from django.views.defaults import page_not_found

    if request.path.startswith("/api/"):
        return JsonResponse(error_body("not_found", "No such resource."), status=404)
    return page_not_found(request, exception)


def server_error(request: Any) -> Any:
    """``handler500``: the API's callers get the envelope (never a traceback); the console its page."""
    from django.http import JsonResponse
    from django.views.defaults import server_error as page

    if request.path.startswith("/api/"):
        return JsonResponse(error_body("server_error", "The server failed; the error is logged."), status=500)
    return page(request)
