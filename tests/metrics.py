"""Quality measures shared by the tests and the engine benchmark."""

from __future__ import annotations

import re


def words(text: str) -> list[str]:
    """Lower-cased words (apostrophes kept), punctuation dropped."""
    return re.sub(r"[^\w']+", " ", text.lower()).split()


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate: word-level Levenshtein distance / reference length."""
    ref, hyp = words(reference), words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i in range(1, len(ref) + 1):
        diag, row[0] = row[0], i
        for j in range(1, len(hyp) + 1):
            diag, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diag + (ref[i - 1] != hyp[j - 1]))
    return row[len(hyp)] / max(len(ref), 1)
