"""Plain text from text assets: txt, markdown, HTML (visible text only), SRT and WebVTT cues."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

from workers.engines.base import EngineInfo, PermanentEngineError

INFO = EngineInfo(name="text-extract", version="text-extract@1")
_TS = r"(?:(\d+):)?(\d{1,2}):(\d{2})[.,](\d{3})"
_CUE = re.compile(rf"{_TS}\s*-->\s*{_TS}")


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
            m = _CUE.search(line)
            if m:
                body = " ".join(x.strip() for x in lines[i + 1:] if x.strip())
                body = re.sub(r"<[^>]+>", "", body)
                if body:
                    start = _seconds(*m.groups()[:4])
                    end = _seconds(*m.groups()[4:])
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
        p.feed(text)
        text = re.sub(r"[ \t]+", " ", "".join(p.parts))
        text = re.sub(r"\n\s*\n+", "\n\n", text).strip()
    return TextDocument(text, _paragraphs(text))
