"""How stored user bytes are answered over HTTP: inert, typed from an allow-list, ranges parsed safely.

Invariants (every content response, whatever its status — 200, 206, 304, 416):

* ``X-Content-Type-Options: nosniff`` and ``Content-Security-Policy: default-src 'none'; sandbox``:
  a browser that navigates to the content runs no script, loads nothing and treats the page as
  a unique opaque origin, so it can read neither cookies nor the CSRF token of the application.
* Text assets (txt, markdown, HTML, SRT, VTT) are always ``text/plain; charset=utf-8`` and an
  attachment: the stored ``mime_type`` (``text/html`` for HTML documents) describes how the text
  is *extracted*, never how it is served.
* Media is ``inline`` only when its canonical type is in :data:`INLINE_TYPES` (formats browsers
  render passively in ``<img>``/``<video>``/``<audio>``); anything else is
  ``application/octet-stream`` as an attachment.
* A ``Range`` header is parsed without converting unbounded digit strings to integers (a header
  with thousands of digits is a comparison, not a 500): syntactically invalid or multi-range
  headers are ignored (RFC 9110 §14.2, the whole content is sent), a first byte at or beyond
  the end answers 416.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from apps.assets.models import Kind, MediaAsset

CSP = "default-src 'none'; sandbox"
TEXT_TYPE = "text/plain; charset=utf-8"
ATTACHMENT_TYPE = "application/octet-stream"
# Rendered passively by browsers (no script, no external loads): served inline with this type.
INLINE_TYPES = frozenset({
    "image/jpeg", "image/png", "image/webp", "image/gif",
    "video/mp4", "video/webm", "video/quicktime",
    "audio/mpeg", "audio/wav", "audio/ogg", "audio/flac", "audio/mp4",
})
_RANGE = re.compile(r"bytes=(\d*)-(\d*)", re.ASCII)
_HUGE = 2**63  # more than any stored size; longer digit strings compare as this


@dataclass(frozen=True)
class Serving:
    content_type: str
    inline: bool


def serving_for(asset: MediaAsset) -> Serving:
    """The type and disposition the asset's bytes are served with (see module invariants)."""
    if asset.kind == Kind.TEXT:
        return Serving(TEXT_TYPE, inline=False)
    if asset.mime_type in INLINE_TYPES:
        return Serving(asset.mime_type, inline=True)
    return Serving(ATTACHMENT_TYPE, inline=False)


def guard(resp: object) -> None:
    """Add the headers that keep user content inert to a response (any status)."""
    resp["X-Content-Type-Options"] = "nosniff"  # type: ignore[index]
    resp["Content-Security-Policy"] = CSP  # type: ignore[index]
    resp["Cross-Origin-Resource-Policy"] = "same-site"  # type: ignore[index]


class Unsatisfiable(Exception):
    """The range starts at or beyond the end of the content: 416."""


def _as_int(digits: str) -> int:
    """``int(digits)``, capped at 2**63 without converting more than 19 digits."""
    digits = digits.lstrip("0") or "0"
    return _HUGE if len(digits) > 19 else min(int(digits), _HUGE)


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """``(start, end)`` inclusive for a single ``bytes=`` range, or None to send everything.

    Raises :class:`Unsatisfiable` when the range is valid but no byte of it exists.
    """
    header = header.strip()
    m = _RANGE.fullmatch(header)
    if m is None:
        return None  # another unit, several ranges, garbage: ignored (RFC 9110 §14.2)
    first, last = m.groups()
    if not first and not last:
        return None
    if first:
        start = _as_int(first)
        if last:
            end = _as_int(last)
            if end < start:
                return None  # invalid byte-range-spec: ignore the header
            end = min(end, size - 1)
        else:
            end = size - 1
        if start >= size:
            raise Unsatisfiable()
        return start, end
    suffix = _as_int(last)
    if suffix == 0 or size == 0:
        raise Unsatisfiable()
    return max(size - suffix, 0), size - 1
