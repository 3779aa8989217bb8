"""The transcript export over HTTP: renderers for SRT and WebVTT (chosen from ``.vtt``/``.srt``/``.json``
suffixes, ``?format=`` or ``Accept`` by :mod:`apps.core.negotiation`) and the payload built from an
asset's stored transcript segments (the formatting itself is :mod:`apps.insights.subtitles`).
"""

from __future__ import annotations

from typing import Any

from rest_framework.renderers import JSONRenderer

from apps.core.negotiation import TextRenderer
from apps.insights import subtitles
from apps.insights.models import TranscriptSegment


class VttRenderer(TextRenderer):
    media_type = "text/vtt"
    format = "vtt"


class SrtRenderer(TextRenderer):
    media_type = "application/x-subrip"
    format = "srt"


RENDERERS = [JSONRenderer, VttRenderer, SrtRenderer]


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
