"""Content negotiation for endpoints that answer in more than one format (JSON plus text formats).

* :class:`TextRenderer` passes a ``str`` body through (the view formats it);
* :class:`KnownFormatNegotiation` answers an unknown ``?format=`` or ``.suffix`` with a 404 JSON error
  naming the formats the view offers (DRF's own is a bare "Not found");
* :class:`JsonErrors` keeps error bodies JSON even when the request negotiated a text format.
"""

from __future__ import annotations

from typing import Any

from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request

from apps.core.errors import ApiError


class TextRenderer(BaseRenderer):
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None,
               renderer_context: dict[str, Any] | None = None) -> bytes:
        return data.encode("utf-8") if isinstance(data, str) else b""


class HtmlRenderer(TextRenderer):
    media_type = "text/html"
    format = "html"


class KnownFormatNegotiation(DefaultContentNegotiation):
    def filter_renderers(self, renderers: list[Any], format: str) -> list[Any]:
        kept = [r for r in renderers if r.format == format]
        if not kept:
            known = sorted(r.format for r in renderers)
            raise ApiError(f"Unknown format {format!r}; use one of: {', '.join(known)}.", code="unknown_format",
                           status_code=404, detail={"formats": known})
        return kept


class JsonErrors:
    """A viewset mixin: an error response is rendered as JSON whatever format the request asked for."""

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(response, "exception", False) and isinstance(getattr(request, "accepted_renderer", None),
                                                                TextRenderer):
            request.accepted_renderer, request.accepted_media_type = JSONRenderer(), "application/json"
        return super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]
