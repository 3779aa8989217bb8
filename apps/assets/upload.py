"""Upload handler that hashes while Django streams the body to a temp file (constant memory).

Over the byte limit it stops keeping data (``SkipFile``) and marks the request, so the
view answers 413 without the file ever being complete on disk. :class:`RawFileParser` feeds
the same handler from a raw ``application/octet-stream`` body.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.conf import settings
from django.core.files.uploadhandler import SkipFile, TemporaryFileUploadHandler
from rest_framework.exceptions import ParseError
from rest_framework.parsers import DataAndFiles, FileUploadParser

from apps.core.errors import ApiError


class HashingUploadHandler(TemporaryFileUploadHandler):
    chunk_size = 1024 * 1024

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        self._sha = hashlib.sha256()
        self._size = 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        self._size += len(raw_data)
        if self._size > settings.MEDIAINTEL_LIMITS["max_bytes"]:
            self.request.upload_too_large = True  # type: ignore[attr-defined]
            self.file.close()
            raise SkipFile()
        self._sha.update(raw_data)
        self.file.write(raw_data)
        return None

    def file_complete(self, file_size: int) -> Any:
        f = super().file_complete(file_size)
        f.sha256 = self._sha.hexdigest()
        return f


class RawFileParser(FileUploadParser):
    """``Content-Type: application/octet-stream``: the request body *is* the file (no multipart).

    The bytes stream through the same :class:`HashingUploadHandler` (temp file + sha256, constant
    memory), skipping Django's multipart parser. The name comes from ``Content-Disposition:
    attachment; filename="…"`` (or ``filename*=UTF-8''…``; without one the file is named
    :attr:`UNNAMED`, and its type comes from its bytes as always); ``title``, ``external_id`` and
    ``metadata`` may be given as query parameters. A declared length over the limit is refused
    before any byte is read; a body shorter than its ``Content-Length`` is refused too.
    """

    media_type = "application/octet-stream"
    FIELDS = ("title", "external_id", "metadata")
    UNNAMED = "upload"

    def get_filename(self, stream: Any, media_type: str | None, parser_context: Any) -> str:
        return super().get_filename(stream, media_type, parser_context) or self.UNNAMED

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> DataAndFiles:
        request = parser_context["request"]
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if declared <= 0:
            raise ApiError("A raw upload needs a Content-Length.", code="length_required", status_code=411)
        if declared > settings.MEDIAINTEL_LIMITS["max_bytes"]:
            request._request.upload_too_large = True
            raise ApiError("The file exceeds the size limit.", code="too_large", status_code=413)
        fields = {k: request.query_params[k] for k in self.FIELDS if k in request.query_params}
        try:
            parsed = super().parse(stream, media_type, parser_context)
        except SkipFile:  # the handler saw more bytes than allowed
            return DataAndFiles(fields, {})
        up = parsed.files["file"]
        if up.size != declared:
            up.close()  # a temporary upload file is deleted on close
            raise ParseError(f"The body ended after {up.size} of {declared} bytes.")
        return DataAndFiles(fields, {"file": up})
