"""Transcript segments as subtitle cues, and cues as SRT, WebVTT and JSON (pure functions, no Django).

Invariants of :func:`cues_from_segments` (the rules the exports follow):

* every cue has at most ``max_lines`` lines of at most ``max_line`` characters (42 × 2 by default);
  a segment that does not fit is split at word boundaries (a single word longer than a line is
  cut), its time shared out in proportion to the characters of each piece;
* no cue lasts more than ``max_dur`` seconds (7 s): longer pieces are split again at words;
* cues never overlap, are in time order and never have zero length (overlapping ASR segments are
  clamped to the end of the previous cue; a piece left without time gets ``min_dur`` and delays the
  following cues until a pause absorbs it);
* a cue shorter than ``min_dur`` (1 s) is lengthened up to ``min_dur`` when the gap to the next
  cue allows, or merged into the next cue when both fit in one cue; only when neither is possible
  (dense speech) does it stay shorter;
* no word is lost or reordered: the cues' words, in order, are the segments' words.

Times are integer milliseconds inside; the formats write ``HH:MM:SS,mmm`` (SRT) and
``HH:MM:SS.mmm`` (WebVTT). :func:`parse_srt` and :func:`parse_vtt` read both back.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

MAX_LINE = 42
MAX_LINES = 2
MIN_DUR = 1.0
MAX_DUR = 7.0

SRT_TYPE = "application/x-subrip; charset=utf-8"
VTT_TYPE = "text/vtt; charset=utf-8"


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    text: str


@dataclass
class Cue:
    start_ms: int
    end_ms: int
    lines: list[str] = field(default_factory=list)

    @property
    def start(self) -> float:
        return self.start_ms / 1000

    @property
    def end(self) -> float:
        return self.end_ms / 1000

    @property
    def text(self) -> str:
        return " ".join(self.lines)

    @property
    def words(self) -> list[str]:
        return self.text.split()


class SubtitleError(ValueError):
    """A subtitle file that does not parse; the message names the line."""


# ------------------------------------------------------------------ building cues
def wrap(words: list[str], max_line: int = MAX_LINE) -> list[str]:
    """Greedy word wrap into lines of at most ``max_line`` characters (words must already fit a line)."""
    lines: list[str] = []
    for w in words:
        if lines and len(lines[-1]) + 1 + len(w) <= max_line:
            lines[-1] += " " + w
        else:
            lines.append(w)
    return lines


def _words(text: str, max_line: int) -> list[str]:
    out: list[str] = []
    for w in text.split():
        while len(w) > max_line:
            out.append(w[:max_line])
            w = w[max_line:]
        if w:
            out.append(w)
    return out


def _pack(words: list[str], max_line: int, max_lines: int) -> list[list[str]]:
    """Consecutive groups of words, each wrapping into at most ``max_lines`` lines."""
    chunks: list[list[str]] = []
    cur: list[str] = []
    for w in words:
        if cur and len(wrap([*cur, w], max_line)) > max_lines:
            chunks.append(cur)
            cur = []
        cur.append(w)
    if cur:
        chunks.append(cur)
    return chunks


def _chars(words: list[str]) -> int:
    return max(1, len(" ".join(words)))


def _share(start: int, end: int, chunks: list[list[str]]) -> list[tuple[int, int, list[str]]]:
    """Give each chunk a slice of ``start..end`` proportional to its characters (contiguous, exact ends)."""
    total = sum(_chars(c) for c in chunks)
    out, acc = [], 0
    for c in chunks:
        s = start + round((end - start) * acc / total)
        acc += _chars(c)
        e = start + round((end - start) * acc / total)
        out.append((s, e, c))
    return out


def _split_long(piece: tuple[int, int, list[str]], max_ms: int) -> list[tuple[int, int, list[str]]]:
    s, e, words = piece
    if e - s <= max_ms or len(words) < 2:
        return [(s, min(e, s + max_ms), words)] if e - s > max_ms else [piece]
    n = min(len(words), math.ceil((e - s) / max_ms))
    # n groups of words balanced by characters
    target = _chars(words) / n
    groups: list[list[str]] = [[]]
    acc = 0
    for i, w in enumerate(words):
        left_words, left_groups = len(words) - i, n - len(groups)
        if groups[-1] and (acc >= target * len(groups) or left_words <= left_groups) and len(groups) < n:
            groups.append([])
        groups[-1].append(w)
        acc += len(w) + 1
    out: list[tuple[int, int, list[str]]] = []
    for sub in _share(s, e, groups):
        out += _split_long(sub, max_ms)
    return out


def cues_from_segments(segments: Iterable[Segment], *, max_line: int = MAX_LINE, max_lines: int = MAX_LINES,
                       min_dur: float = MIN_DUR, max_dur: float = MAX_DUR) -> list[Cue]:
    """Subtitle cues for transcript segments following the rules in the module docstring."""
    if max_line < 1 or max_lines < 1 or not (0 <= min_dur <= max_dur) or max_dur <= 0:
        raise ValueError("max_line and max_lines must be positive and 0 <= min_dur <= max_dur")
    min_ms, max_ms = round(min_dur * 1000), round(max_dur * 1000)
    pieces: list[tuple[int, int, list[str]]] = []
    for seg in sorted(segments, key=lambda g: (g.start, g.end)):
        words = _words(seg.text or "", max_line)
        if not words:
            continue
        s = max(0, round(seg.start * 1000))
        e = max(s, round(seg.end * 1000))
        for p in _share(s, e, _pack(words, max_line, max_lines)):
            pieces += _split_long(p, max_ms)

    # no overlap, in order; a piece left without time (its segment too short for its text, or wholly
    # overlapped) gets ``min_dur`` and pushes the following ones later until a pause absorbs the delay
    cues: list[Cue] = []
    prev_end = 0
    for s, e, words in pieces:
        s = max(s, prev_end)
        e = max(e, s)
        if e == s:
            e = s + max(min_ms, 1)
        cues.append(Cue(s, e, words))  # lines filled in below
        prev_end = e

    # minimum duration: lengthen into the gap, else merge into the next cue when both fit one cue
    out: list[Cue] = []
    i = 0
    while i < len(cues):
        c = cues[i]
        nxt = cues[i + 1] if i + 1 < len(cues) else None
        if c.end_ms - c.start_ms < min_ms:
            limit = nxt.start_ms if nxt else c.start_ms + min_ms
            c.end_ms = max(c.end_ms, min(c.start_ms + min_ms, limit))
            if (c.end_ms - c.start_ms < min_ms and nxt is not None
                    and len(wrap([*c.lines, *nxt.lines], max_line)) <= max_lines
                    and nxt.end_ms - c.start_ms <= max_ms):
                cues[i + 1] = Cue(c.start_ms, nxt.end_ms, [*c.lines, *nxt.lines])
                i += 1
                continue
        out.append(c)
        i += 1
    for c in out:
        c.lines = wrap(c.lines, max_line)  # the word lists become wrapped lines
    return out


# ------------------------------------------------------------------ writing
def _ts(ms: int, sep: str) -> str:
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, ms = divmod(rem, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def to_srt(cues: list[Cue]) -> str:
    """SubRip: numbered blocks, ``HH:MM:SS,mmm --> HH:MM:SS,mmm``, blank line between blocks."""
    blocks = []
    for n, c in enumerate(cues, 1):
        text = "\n".join(line.replace("-->", "->") for line in c.lines)
        blocks.append(f"{n}\n{_ts(c.start_ms, ',')} --> {_ts(c.end_ms, ',')}\n{text}\n")
    return "\n".join(blocks)


def to_vtt(cues: list[Cue]) -> str:
    """WebVTT: ``WEBVTT`` header, cues with ``HH:MM:SS.mmm`` times; ``&``, ``<``, ``>`` escaped."""
    out = ["WEBVTT\n"]
    for n, c in enumerate(cues, 1):
        text = "\n".join(html.escape(line, quote=False) for line in c.lines)
        out.append(f"{n}\n{_ts(c.start_ms, '.')} --> {_ts(c.end_ms, '.')}\n{text}\n")
    return "\n".join(out)


def to_json(cues: list[Cue], segments: list[dict[str, Any]], **meta: Any) -> str:
    """The source segments and the cues built from them, times in seconds."""
    body = {**meta, "segments": segments,
            "cues": [{"index": n, "start": c.start, "end": c.end, "lines": c.lines}
                     for n, c in enumerate(cues, 1)]}
    return json.dumps(body, ensure_ascii=False, indent=1)


# ------------------------------------------------------------------ reading
_SRT_TIME = re.compile(r"^(\d{2,}):(\d{2}):(\d{2}),(\d{3}) --> (\d{2,}):(\d{2}):(\d{2}),(\d{3})$")
_VTT_TIME = re.compile(r"^(?:(\d{2,}):)?(\d{2}):(\d{2})\.(\d{3}) --> (?:(\d{2,}):)?(\d{2}):(\d{2})\.(\d{3})(?: .*)?$")


def _ms(h: str | None, m: str, s: str, ms: str) -> int:
    if int(m) > 59 or int(s) > 59:
        raise SubtitleError(f"minutes and seconds are 00..59: {m}:{s}")
    return ((int(h or 0) * 60 + int(m)) * 60 + int(s)) * 1000 + int(ms)


def _blocks(text: str) -> list[list[str]]:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    blocks, cur = [], []
    for line in lines:
        if line.strip():
            cur.append(line)
        elif cur:
            blocks.append(cur)
            cur = []
    if cur:
        blocks.append(cur)
    return blocks


def parse_srt(text: str) -> list[Cue]:
    """Read SubRip back; raises :class:`SubtitleError` on a malformed block."""
    cues = []
    for b in _blocks(text.lstrip("\ufeff")):
        if len(b) < 2 or not b[0].strip().isdigit():
            raise SubtitleError(f"an SRT block starts with its number: {b[0]!r}")
        m = _SRT_TIME.match(b[1].strip())
        if not m:
            raise SubtitleError(f"not an SRT time line: {b[1]!r}")
        g = m.groups()
        cues.append(Cue(_ms(*g[:4]), _ms(*g[4:]), b[2:]))
    return cues


def parse_vtt(text: str) -> list[Cue]:
    """Read WebVTT back (header, optional cue ids, NOTE/STYLE blocks skipped, entities unescaped)."""
    blocks = _blocks(text.lstrip("\ufeff"))
    if not blocks or not re.match(r"^WEBVTT(?:[ \t].*)?$", blocks[0][0]):
        raise SubtitleError("a WebVTT file starts with 'WEBVTT'")
    cues = []
    for b in blocks[1:]:
        if b[0].startswith(("NOTE", "STYLE", "REGION")):
            continue
        timing = 1 if "-->" not in b[0] else 0
        if timing >= len(b):
            raise SubtitleError(f"a WebVTT cue has a time line: {b[0]!r}")
        m = _VTT_TIME.match(b[timing].strip())
        if not m:
            raise SubtitleError(f"not a WebVTT time line: {b[timing]!r}")
        g = m.groups()
        cues.append(Cue(_ms(*g[:4]), _ms(*g[4:]), [html.unescape(line) for line in b[timing + 1:]]))
    return cues
