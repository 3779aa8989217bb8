"""The transcript export over HTTP: renderers for SRT and WebVTT, the negotiation that picks one from
``.vtt``/``.srt``/``.json`` suffixes, ``?format=`` or ``Accept``, and the payload built from an asset's
stored transcript segments (the formatting itself is :mod:`apps.insights.subtitles`).

Errors are always JSON, whatever format was asked for: an unknown format is a 404 naming the
known ones, an ``Accept`` that none satisfies a 406.
"""

from __future__ import annotations

from typing import Any

from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer, JSONRenderer

from apps.core.errors import ApiError
from apps.insights import subtitles
from apps.insights.models import TranscriptSegment


class _TextRenderer(BaseRenderer):
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None,
               renderer_context: dict[str, Any] | None = None) -> bytes:
        return data.encode("utf-8") if isinstance(data, str) else b""


class VttRenderer(_TextRenderer):
    media_type = "text/vtt"
    format = "vtt"


class SrtRenderer(_TextRenderer):
    media_type = "application/x-subrip"
    format = "srt"


TEXT_RENDERERS = (VttRenderer, SrtRenderer)
RENDERERS = [JSONRenderer, *TEXT_RENDERERS]
FORMATS = sorted(r.format for r in RENDERERS)


class TranscriptNegotiation(DefaultContentNegotiation):
    """DRF's negotiation, with an unknown ``format`` answered as a 404 that names the known formats."""

    def filter_renderers(self, renderers: list[Any], format: str) -> list[Any]:
        kept = [r for r in renderers if r.format == format]
        if not kept:
            raise ApiError(f"Unknown transcript format {format!r}; use one of: {', '.join(FORMATS)}.",
                           code="unknown_format", status_code=404, detail={"formats": FORMATS})
        return kept


def transcript_export(asset: Any, fmt: str) -> str | dict[str, Any]:
    """The asset's transcript as ``fmt`` (``vtt``/``srt`` text, or the JSON body as a dict)."""
    rows = list(TranscriptSegment.objects.filter(asset=asset).order_by("index", "id"))
    segs = [subtitles.Segment(r.start or 0.0, r.end if r.end is not None else (r.start or 0.0), r.text)
            for r in rows]
    cues = subtitles.cues_from_segments(segs)
    if fmt == "vtt":
        return subtitles.to_vtt(cues)
    if fmt == "srt":
        return subtitles.to_srt(cues)
    languages = sorted({r.language for r in rows if r.language})
    return {
        "asset": str(asset.pk),
        "languages": languages,
        "rules": {"max_line": subtitles.MAX_LINE, "max_lines": subtitles.MAX_LINES,
                  "min_duration": subtitles.MIN_DUR, "max_duration": subtitles.MAX_DUR},
        "segments": [{"index": r.index, "start": r.start, "end": r.end, "text": r.text, "language": r.language,
                      "confidence": r.confidence, "engine_version": r.engine_version} for r in rows],
        "cues": [{"index": n, "start": c.start, "end": c.end, "lines": c.lines} for n, c in enumerate(cues, 1)],
    }
