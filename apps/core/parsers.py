"""Request body parsers: a body is read as what its Content-Type says, or refused with a 400.

:class:`MultiPartParser` is the API's multipart parser (the default in ``REST_FRAMEWORK`` and the
one views name in their ``parser_classes``). Django's parser silently skips a part it cannot read
(no ``Content-Disposition: form-data; name=…``), so a body that is not a form at all — a JSON
array sent as multipart, say — came out as an empty form, and a ``PATCH`` answered 200 having
changed nothing. Invariant: a multipart body that carries content but no named part is a
``400 parse_error`` (as malformed JSON is); the one empty form, a body that is only the closing
delimiter, stays an empty form.
"""

from __future__ import annotations

from typing import Any

from django.core.files.uploadhandler import FileUploadHandler
from django.utils.http import parse_header_parameters
from rest_framework import parsers
from rest_framework.exceptions import ParseError


class _PartSeen(FileUploadHandler):
    """First in the handler chain: notes that a named file part began (an upload handler may
    then stop the upload, e.g. one too large, which leaves the form empty), passes data on."""

    started = False

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        self.started = True

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None


class MultiPartParser(parsers.MultiPartParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict[str, Any] | None = None) -> Any:
        seen = _PartSeen()
        request = (parser_context or {}).get("request")
        if request is not None:
            request.upload_handlers.insert(0, seen)
        result = super().parse(stream, media_type, parser_context)
        if not result.data and not result.files and not seen.started \
                and _has_content(media_type, parser_context or {}):
            raise ParseError("The multipart body has no readable part: each part needs a "
                             "`Content-Disposition: form-data; name=\"…\"` header.")
        return result


def _has_content(media_type: str | None, parser_context: dict[str, Any]) -> bool:
    """Whether the body is longer than the closing delimiter of an empty form (``--boundary--``
    plus a line break). A body of unknown length (chunked) is given the benefit of the doubt."""
    request = parser_context.get("request")
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0) if request is not None else 0
    except ValueError:
        return False
    boundary = parse_header_parameters(media_type or "")[1].get("boundary", "")
    return length > len(boundary) + 6
