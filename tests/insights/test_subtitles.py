"""Subtitle cues from transcript segments: line and duration rules, and SRT/WebVTT that parse back."""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.insights.subtitles import (
    Cue,
    Segment,
    SubtitleError,
    cues_from_segments,
    parse_srt,
    parse_vtt,
    to_json,
    to_srt,
    to_vtt,
)

SHORT = [Segment(0.0, 2.5, "Welcome to the harbour tour."),
         Segment(3.0, 6.2, "On your left, the old lighthouse."),
         Segment(6.2, 9.0, "Fish & chips <served> daily.")]

LONG_TEXT = ("the ferry leaves every hour from the northern pier and stops at each island of the archipelago "
             "before it returns late in the evening with the fishermen and their catch of the day")
LONG = Segment(10.0, 31.0, LONG_TEXT)


def words_of(cues: list[Cue]) -> list[str]:
    return [w for c in cues for w in c.words]


def assert_rules(cues: list[Cue]) -> None:
    for c in cues:
        assert 1 <= len(c.lines) <= 2, c
        assert all(len(line) <= 42 for line in c.lines), c
        assert c.end_ms - c.start_ms <= 7000, c
        assert c.end_ms > c.start_ms, c
    for a, b in itertools.pairwise(cues):
        assert a.end_ms <= b.start_ms, (a, b)


def test_short_segments_become_one_cue_each_and_parse_back_to_the_same_segments() -> None:
    cues = cues_from_segments(SHORT)
    assert [(c.start, c.end, c.text) for c in cues] == [(s.start, s.end, s.text) for s in SHORT]
    for parsed in (parse_srt(to_srt(cues)), parse_vtt(to_vtt(cues))):
        assert [(c.start, c.end, c.text) for c in parsed] == [(s.start, s.end, s.text) for s in SHORT]


def test_a_long_segment_is_split_at_word_boundaries_within_line_and_duration_limits() -> None:
    cues = cues_from_segments([LONG])
    assert len(cues) >= 3
    assert_rules(cues)
    assert words_of(cues) == LONG.text.split()
    assert cues[0].start == LONG.start and cues[-1].end == LONG.end
    # the pieces are contiguous: the segment's time is shared out, not invented
    assert all(a.end_ms == b.start_ms for a, b in itertools.pairwise(cues))
    for parsed in (parse_srt(to_srt(cues)), parse_vtt(to_vtt(cues))):
        assert [(c.start_ms, c.end_ms, c.lines) for c in parsed] == [(c.start_ms, c.end_ms, c.lines) for c in cues]


def test_a_slow_short_segment_is_split_to_at_most_seven_seconds() -> None:
    cues = cues_from_segments([Segment(0, 20, "one two three four five six")])
    assert_rules(cues)
    assert words_of(cues) == ["one", "two", "three", "four", "five", "six"]
    assert cues[-1].end == 20


def test_a_single_word_longer_than_seven_seconds_is_capped() -> None:
    cues = cues_from_segments([Segment(5, 30, "hello")])
    assert [(c.start, c.end, c.text) for c in cues] == [(5, 12, "hello")]


def test_a_word_longer_than_a_line_is_cut() -> None:
    word = "x" * 100
    cues = cues_from_segments([Segment(0, 6, word)])
    assert_rules(cues)
    assert "".join(words_of(cues)) == word


def test_overlapping_segments_are_clamped_so_cues_never_overlap() -> None:
    cues = cues_from_segments([Segment(0, 4, "first words here"), Segment(2, 6, "second words here"),
                               Segment(2, 3, "third")])
    assert_rules(cues)
    assert words_of(cues) == ["first", "words", "here", "third", "second", "words", "here"]


def test_a_short_cue_is_lengthened_into_the_gap_or_merged_with_the_next() -> None:
    lengthened = cues_from_segments([Segment(0, 0.3, "Hi."), Segment(5, 7, "Then a pause.")])
    assert [(c.start, c.end) for c in lengthened] == [(0, 1), (5, 7)]
    merged = cues_from_segments([Segment(0, 0.3, "Hi."), Segment(0.3, 2, "Nice to see you.")])
    assert [(c.start, c.end, c.text) for c in merged] == [(0, 2, "Hi. Nice to see you.")]


def test_empty_segments_are_skipped_and_no_segments_give_an_empty_file() -> None:
    assert cues_from_segments([Segment(0, 1, "   ")]) == []
    assert parse_vtt(to_vtt([])) == []
    assert to_srt([]) == ""


def test_vtt_escapes_markup_and_srt_never_contains_a_second_arrow() -> None:
    cues = cues_from_segments([Segment(0, 3, "a <b> & c --> d")])
    vtt = to_vtt(cues)
    assert "&lt;b&gt; &amp; c --&gt; d" in vtt
    assert parse_vtt(vtt)[0].text == "a <b> & c --> d"
    srt = to_srt(cues)
    assert srt.count("-->") == 1
    assert parse_srt(srt)[0].text == "a <b> & c -> d"


def test_timestamps_past_an_hour() -> None:
    cues = cues_from_segments([Segment(3725.5, 3727.25, "late")])
    assert "01:02:05,500 --> 01:02:07,250" in to_srt(cues)
    assert "01:02:05.500 --> 01:02:07.250" in to_vtt(cues)


def test_json_carries_segments_and_cues_in_seconds() -> None:
    cues = cues_from_segments(SHORT)
    body = json.loads(to_json(cues, [{"start": 0.0, "end": 2.5, "text": SHORT[0].text}], asset="a1"))
    assert body["asset"] == "a1"
    assert body["cues"][2] == {"index": 3, "start": 6.2, "end": 9.0, "lines": ["Fish & chips <served> daily."]}


@pytest.mark.parametrize("text", ["1\n00:00:01.000 --> 00:00:02.000\nhi\n", "x\n00:00:01,000 --> 00:00:02,000\nhi\n",
                                  "1\n00:00:61,000 --> 00:00:62,000\nhi\n"])
def test_malformed_srt_is_refused_with_a_message(text: str) -> None:
    with pytest.raises(SubtitleError):
        parse_srt(text)


def test_malformed_vtt_is_refused_with_a_message() -> None:
    with pytest.raises(SubtitleError, match="WEBVTT"):
        parse_vtt("1\n00:00:01.000 --> 00:00:02.000\nhi\n")
    with pytest.raises(SubtitleError, match="time line"):
        parse_vtt("WEBVTT\n\n1\n00:00:01,000 --> 00:00:02,000\nhi\n")


def test_bad_rules_are_refused() -> None:
    with pytest.raises(ValueError):
        cues_from_segments(SHORT, min_dur=8, max_dur=7)


# ------------------------------------------------------------------ properties over generated transcripts
WORD = st.text(alphabet=st.sampled_from("abcdefghijklmnopqrstuvwxyzÄé&<>'-.,?!0123456789"), min_size=1, max_size=14)


@st.composite
def transcripts(draw: st.DrawFn) -> list[Segment]:
    """Sequential speech segments as an ASR engine gives them: pauses ≥ 0, durations 0.05–30 s."""
    t, out = draw(st.floats(0, 5)), []
    for _ in range(draw(st.integers(1, 12))):
        t += draw(st.floats(0, 3))
        dur = draw(st.floats(0.05, 30))
        words = draw(st.lists(WORD | st.text(alphabet="x", min_size=43, max_size=60), min_size=1, max_size=40))
        out.append(Segment(round(t, 3), round(t + dur, 3), " ".join(words)))
        t += dur
    return out


@settings(max_examples=300, deadline=None)
@given(transcripts())
def test_generated_transcripts_follow_the_rules_and_parse_back(segments: list[Segment]) -> None:
    cues = cues_from_segments(segments)
    assert_rules(cues)
    assert "".join(words_of(cues)) == "".join(w for s in segments for w in s.text.split())
    assert cues[0].start_ms >= round(segments[0].start * 1000)
    expected = [(c.start_ms, c.end_ms, c.lines) for c in cues]
    assert [(c.start_ms, c.end_ms, c.lines) for c in parse_vtt(to_vtt(cues))] == expected
    srt_lines = [[line.replace("-->", "->") for line in c.lines] for c in cues]
    assert [(c.start_ms, c.end_ms, c.lines) for c in parse_srt(to_srt(cues))] == [
        (s, e, ls) for (s, e, _), ls in zip(expected, srt_lines, strict=True)]
