"""Plain text from text assets: txt, markdown, HTML (visible text only), SRT and WebVTT cues.

Every pattern here runs on untrusted text in time linear in its length: a cue timing line is
recognised only when it is at most :data:`MAX_TIMING_LINE` characters and its timestamps are
read by splitting on ``-->`` and matching each bounded token whole (no backtracking search
over the line); tags are stripped with a class that cannot re-scan a run of ``<``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

from workers.engines.base import EngineInfo, PermanentEngineError

INFO = EngineInfo(name="text-extract", version="text-extract@1")
MAX_TIMING_LINE = 256  # "00:00:01.000 --> 00:00:02.000" plus WebVTT cue settings
_TS = re.compile(r"(?:(\d{1,6}):)?(\d{1,2}):(\d{2})[.,](\d{3})", re.ASCII)
_TAG = re.compile(r"<[^<>]*>")
# html.parser re-scans the rest of the input from every "<" it cannot close (quadratic: "a<b "
# repeated). A "<" that is not followed by a letter, "/", "!" or "?", or that meets another "<"
# before any ">", is treated as text: it is swapped for a private-use character while parsing
# (and back in the extracted text). Each kept "<" then scans only up to its own ">", and these
# stretches never overlap, so parsing is linear. (An attribute value holding "<" degrades to text.)
_BARE_LT = re.compile(r"<(?![A-Za-z!/?])|<(?=[^<>]*(?:<|\Z))")
_LT_STANDIN = "\ue000"


def cue_times(line: str) -> tuple[float, float] | None:
    """``(start, end)`` seconds of a cue timing line (``a --> b [settings]``), else None.

    Linear in the line and bounded: longer lines are not timing lines; each timestamp is one
    short token matched whole.
    """
    if len(line) > MAX_TIMING_LINE or "-->" not in line:
        return None
    left, _, right = line.partition("-->")
    rest = right.split(None, 1)
    if not rest:
        return None
    a, b = _TS.fullmatch(left.strip()), _TS.fullmatch(rest[0])
    if a is None or b is None:
        return None
    return _seconds(*a.groups()), _seconds(*b.groups())


@dataclass
class TextSegment:
    text: str
    char_start: int
    char_end: int
    start: float | None = None
    end: float | None = None


@dataclass
class TextDocument:
    text: str
    segments: list[TextSegment] = field(default_factory=list)


class _Visible(HTMLParser):
    SKIP = {"script", "style", "noscript", "template", "head"}
    BLOCK = {"p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "section", "article", "title"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in self.SKIP:
            self.skip += 1
        elif tag in self.BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP and self.skip:
            self.skip -= 1
        elif tag in self.BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(data)


def _seconds(h: str | None, m: str, s: str, ms: str) -> float:
    return int(h or 0) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


def _cues(text: str) -> TextDocument:
    out: list[str] = []
    segs: list[TextSegment] = []
    pos = 0
    for block in re.split(r"\r?\n\s*\r?\n", text):
        lines = block.strip().splitlines()
        for i, line in enumerate(lines):
            times = cue_times(line)
            if times:
                body = " ".join(x.strip() for x in lines[i + 1:] if x.strip())
                body = _TAG.sub("", body)
                if body:
                    start, end = times
                    segs.append(TextSegment(body, pos, pos + len(body), start, end))
                    out.append(body)
                    pos += len(body) + 1
                break
    return TextDocument("\n".join(out), segs)


def _paragraphs(text: str) -> list[TextSegment]:
    segs = []
    for m in re.finditer(r"\S(?:.*?\S)?(?=\s*\n\s*\n|\s*$)", text, flags=re.S):
        segs.append(TextSegment(m.group(0), m.start(), m.end()))
    return segs


def extract_text(data: bytes, mime: str) -> TextDocument:
    """Decode UTF-8 and keep what a reader sees; cue files keep their time ranges."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise PermanentEngineError(f"text is not valid UTF-8 at byte {e.start}") from None
    if mime in ("application/x-subrip", "text/vtt"):
        return _cues(text)
    if mime == "text/html":
        p = _Visible()
        safe = _BARE_LT.sub(_LT_STANDIN, text)
        p.feed(safe)
        p.close()
        text = re.sub(r"[ \t]+", " ", "".join(p.parts).replace(_LT_STANDIN, "<"))
        text = re.sub(r"\n\s*\n+", "\n\n", text).strip()
    return TextDocument(text, _paragraphs(text))
