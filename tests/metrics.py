"""Quality measures shared by the tests and the engine benchmark."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache


def words(text: str) -> list[str]:
    """Lower-cased words (apostrophes kept), punctuation dropped."""
    return re.sub(r"[^\w']+", " ", text.lower()).split()


def _edits(ref: list[str], hyp: list[str]) -> int:
    """Word-level Levenshtein distance."""
    row = list(range(len(hyp) + 1))
    for i in range(1, len(ref) + 1):
        diag, row[0] = row[0], i
        for j in range(1, len(hyp) + 1):
            diag, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diag + (ref[i - 1] != hyp[j - 1]))
    return row[len(hyp)]


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate: word-level Levenshtein distance / reference length."""
    ref, hyp = words(reference), words(hypothesis)
    return _edits(ref, hyp) / max(len(ref), 1)


@cache
def _english_normalizer():  # type: ignore[no-untyped-def]
    from whisper.normalizers import EnglishTextNormalizer

    return EnglishTextNormalizer()


def normalized_words(text: str) -> list[str]:
    """Words after the standard English ASR normalisation (Whisper's: "nine" and "9" are one word,
    spelling variants and fillers unified), as speech-to-text is scored in the literature."""
    return words(_english_normalizer()(text))


def normalized_wer(reference: str, hypothesis: str) -> float:
    ref = normalized_words(reference)
    return _edits(ref, normalized_words(hypothesis)) / max(len(ref), 1)


def corpus_wer(pairs: Iterable[tuple[str, str]]) -> float:
    """WER over a set of (reference, hypothesis) pairs, normalised: all edits / all reference words,
    so one hard clip moves the figure by its share only."""
    edits = total = 0
    for ref, hyp in pairs:
        r = normalized_words(ref)
        edits += _edits(r, normalized_words(hyp))
        total += len(r)
    return edits / max(total, 1)
