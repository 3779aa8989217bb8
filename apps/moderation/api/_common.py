"""Plumbing shared by the moderation API resources: text parsers, error mapping, helpers."""

from __future__ import annotations

import codecs
from typing import Any

from rest_framework.parsers import BaseParser
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.errors import ApiError
from apps.core.negotiation import TextRenderer
from apps.core.roles import MODERATOR, has_role
from apps.moderation.services import ModerationError


# ------------------------------------------------------------------ plumbing
class _TextParser(BaseParser):
    """A raw text body (YAML, CSV) handed to the view as ``str``."""

    media_type = "text/plain"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict[str, Any] | None = None) -> str:
        charset = "utf-8"
        if media_type and "charset=" in media_type:
            charset = media_type.split("charset=", 1)[1].split(";")[0].strip()
        try:
            codecs.lookup(charset)
        except LookupError:
            charset = "utf-8"
        return stream.read().decode(charset, "replace") if stream is not None else ""


class CsvRenderer(TextRenderer):
    media_type = "text/csv"
    format = "csv"


class YamlParser(_TextParser):
    media_type = "application/yaml"


class XYamlParser(_TextParser):
    media_type = "application/x-yaml"


class TextYamlParser(_TextParser):
    media_type = "text/yaml"


class CsvParser(_TextParser):
    media_type = "text/csv"


class ServiceErrors:
    """Turn ``ModerationError`` from the services into the API's error format."""

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, ModerationError):
            exc = ApiError(str(exc), code=exc.code, status_code=exc.status)
        return super().handle_exception(exc)  # type: ignore[misc]



def _is_moderator(request: Request) -> bool:
    return has_role(request.user, MODERATOR)


def _valid(serializer_class: type, data: Any, **kw: Any) -> dict[str, Any]:
    ser = serializer_class(data=data, **kw)
    ser.is_valid(raise_exception=True)
    return ser.validated_data


