"""A small speech set for quality tests: several synthetic voices reading several sentences.

One synthetic clip sits near a model's decision boundary, and int8 kernels differ by CPU
instruction set (AVX2, AVX-512, VNNI), so one clip's transcript may change from machine to
machine. Quality is judged on the set's aggregate word error rate instead, with thresholds set
from runs on more than one instruction set (see tests/workers/engines/test_transcribe.py), and
a failure prints every clip as heard.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tests.media import make_speech_wav
from tests.metrics import corpus_wer, normalized_wer

SENTENCES = (
    "The museum opens at nine and the guided tour starts in the east wing.",
    "The quick brown fox jumps over the lazy dog.",
    "Please remember to water the plants on Tuesday morning.",
    "Our train leaves the station at half past seven every evening.",
    "She bought fresh bread, cheese and apples at the market.",
)
#: espeak-ng voices: default, US and RP English, a female and a male variant
VOICES = ("en", "en-us", "en-gb-x-rp", "en+f3", "en-us+m3")


@dataclass(frozen=True)
class Clip:
    voice: str
    text: str
    path: Path


def make_clips(folder: Path) -> list[Clip]:
    clips = []
    for v in VOICES:
        for i, text in enumerate(SENTENCES):
            clips.append(Clip(v, text, make_speech_wav(folder / f"{v}-{i}.wav", text, v)))
    return clips


def heard(clips: list[Clip], hypotheses: list[str]) -> tuple[float, str]:
    """The set's normalised WER, and a table of every clip as heard (for failure messages)."""
    lines = [f"{normalized_wer(c.text, h):5.2f}  {c.voice:<11} {c.text!r} heard as {h!r}"
             for c, h in zip(clips, hypotheses, strict=True)]
    score = corpus_wer(zip([c.text for c in clips], hypotheses, strict=True))
    return score, f"corpus WER {score:.3f} over {len(clips)} clips:\n" + "\n".join(lines)
