"""Every pattern applied to user text runs in (about) linear time: no catastrophic backtracking.

Regular expressions and parsers see untrusted text in the decode worker (cue and HTML
extraction), the moderate worker (lexicon, link signals) and the web process (type sniffing,
filenames, ``Range``). Each is fed long adversarial inputs — runs of the characters its
pattern cares about — and must answer within a time budget that a linear pass meets by a wide
margin on a loaded 2-core machine while a quadratic one (the defects these tests were written
for) misses it many times over.

This is a security property (denial of service by one upload), hence the timed assertions.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workers.engines.text_extract import cue_times, extract_text
from workers.engines.text_moderation import Lexicon, normalize

HOSTILE = "0123456789:,.->< \n\r\t&!/?=*'\"#;af@$_iu"
fuzz = settings(max_examples=20, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def within(budget: float, fn: Callable[..., Any], *args: Any) -> Any:
    t = time.perf_counter()
    out = fn(*args)
    took = time.perf_counter() - t
    assert took < budget, f"{getattr(fn, '__name__', fn)} took {took:.2f}s on {len(args[0])} characters"
    return out


def adversarial(min_len: int, max_len: int, prefixes: tuple[str, ...] = ("",)) -> st.SearchStrategy[str]:
    """A prefix that reaches a code path, then a short hostile piece repeated to a long run."""
    piece = st.text(alphabet=HOSTILE, min_size=1, max_size=6)
    return st.builds(lambda pre, p, n, tail: pre + (p * (n // len(p) + 1))[:n] + tail,
                     st.sampled_from(prefixes), piece, st.integers(min_len, max_len),
                     st.text(alphabet=HOSTILE, max_size=4))


# ------------------------------------------------------------------ cue files (SRT, WebVTT)

def test_a_line_of_thousands_of_digits_in_a_subtitle_file_is_parsed_at_once():
    doc = "1\n00:00:01,000 --> 00:00:02,000\nhello\n\n" + "9" * 8000 + "\n"
    within(0.05 * 20, extract_text, doc.encode(), "application/x-subrip")  # was 0.7-1.5 s
    assert within(0.05, cue_times, "9" * 8000) is None


@pytest.mark.parametrize("mime", ["application/x-subrip", "text/vtt"])
@pytest.mark.parametrize("line", ["9" * 1_000_000, "00:00:01,000 -->" * 62_500, "<" * 1_000_000])
def test_a_one_megabyte_line_in_a_cue_file_takes_well_under_two_seconds(mime, line):
    head = "WEBVTT\n\n" if mime == "text/vtt" else ""
    doc = f"{head}1\n00:00:01.000 --> 00:00:02.500 align:start\n{line}\n\n2\n00:00:03,000 --> 00:00:04,000\nbye\n"
    out = within(2.0, extract_text, doc.encode(), mime)
    assert [(s.start, s.end) for s in out.segments] == [(1.0, 2.5), (3.0, 4.0)]


def test_cue_timestamps_are_still_read_with_hours_settings_and_both_separators():
    assert cue_times("00:00:01,000 --> 00:00:02,500") == (1.0, 2.5)
    assert cue_times("01:02.250-->1:00:00.000 position:10% align:start") == (62.25, 3600.0)
    assert cue_times("1 00:00:01,000 --> x") is None and cue_times("-->") is None


@fuzz
@given(adversarial(20_000, 60_000, ("", "1\n", "WEBVTT\n\n1\n00:00:01.000 --> ", "1\n00:00:01,000 --> 00:00:02,000\n")))
def test_cue_extraction_is_linear_on_adversarial_text(text):
    for mime in ("application/x-subrip", "text/vtt"):
        within(1.5, extract_text, text.encode(), mime)


# ------------------------------------------------------------------ HTML and plain text

@pytest.mark.parametrize("piece", ["a<b ", "<", "< ", "<=", "<a b='", "<!-- <", "&#"])
def test_html_with_unclosed_tags_is_extracted_in_linear_time(piece):
    text = piece * (400_000 // len(piece))
    within(2.0, extract_text, text.encode(), "text/html")


def test_html_extraction_still_keeps_visible_text_and_literal_less_than_signs():
    doc = b"<p>Hello <b>world</b> 1 < 2 &amp; <!-- c --> x</p><script>if (a<b) evil()</script><p>a<b</p>"
    assert extract_text(doc, "text/html").text == "Hello world 1 < 2 & x\n\na<b"


@fuzz
@given(adversarial(20_000, 60_000, ("", "<!doctype html><p>", "<html><a href='", "<script>")))
def test_html_and_plain_text_extraction_is_linear_on_adversarial_text(text):
    within(1.5, extract_text, text.encode(), "text/html")
    within(1.5, extract_text, text.encode(), "text/plain")


# ------------------------------------------------------------------ moderation

@pytest.fixture(scope="module")
def lexicon() -> Lexicon:
    return Lexicon.builtin()


@pytest.mark.parametrize("text", ["f" * 16_000, "i " * 8_000, "*" * 16_000, "a." * 8_000, "fu" * 8_000])
def test_the_lexicon_is_linear_on_long_runs(lexicon, text):
    within(3.0, lexicon.find, text)  # "f" * 16,000 took 17 s


def test_the_lexicon_still_finds_obfuscated_words_after_the_linear_rewrite(lexicon):
    found = {(f.category, f.text) for f in lexicon.find("motherfucker, f u c k, ffuuck, i i hope you die, id1ot")}
    assert ("profanity", "motherfucker") in found and ("profanity", "f u c k") in found
    assert ("profanity", "ffuuck") in found and ("insult", "id1ot") in found
    assert any(c == "threat" and "hope you die" in t for c, t in found)


@fuzz
@given(adversarial(5_000, 16_000))
def test_text_moderation_is_linear_on_adversarial_text(lexicon, text):
    within(4.0, lexicon.find, text)
    within(2.0, normalize, text)


@pytest.mark.parametrize("text", ["a." * 8_000, "a.-" * 5_000, "-" * 16_000 + ".x"])
def test_the_link_signal_pattern_is_linear(text):
    from apps.moderation.signals import URL

    within(0.5, URL.findall, text)  # "a." * 8,000 took 7 s


@fuzz
@given(adversarial(20_000, 60_000, ("", "http://", "www.", "a.com ")))
def test_the_link_signal_pattern_is_linear_on_adversarial_text(text):
    from apps.moderation.signals import URL

    within(1.0, URL.findall, text)


# ------------------------------------------------------------------ the web process

@fuzz
@given(adversarial(20_000, 64_000, ("", "1\n", "1\n00:00:01,000 --> ", "WEBVTT", "<!doctype html")))
def test_type_sniffing_is_linear_on_adversarial_text(text):
    from apps.assets.sniff import Rejected, sanitize_filename, sniff

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "x"
        path.write_bytes(text.encode())

        def sniff_it(_: str) -> None:
            with contextlib.suppress(Rejected):
                sniff(path, "x.txt")

        within(1.0, sniff_it, text)
    within(1.0, sanitize_filename, text)


@fuzz
@given(st.text(alphabet="bytes=0123456789-, ", max_size=20_000))
def test_range_parsing_is_linear_and_never_raises_unexpectedly(header):
    from apps.assets.content import Unsatisfiable, parse_range

    def parse(h: str) -> None:
        try:
            r = parse_range(h, 1000)
        except Unsatisfiable:
            return
        assert r is None or 0 <= r[0] <= r[1] < 1000

    within(0.5, parse, header)
