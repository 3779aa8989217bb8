"""Abusive-text flags: lexicon with obfuscation handling, plus alt-profanity-check sentences."""

from __future__ import annotations

import pytest

from workers.engines import text_moderation as tm
from workers.engines.base import PermanentEngineError


@pytest.fixture(scope="module")
def moderator() -> tm.TextModerator:
    return tm.get_text_moderator()


def lexicon_hits(flags: list[tm.TextFlag], text: str) -> set[tuple[str, str]]:
    for f in flags:
        assert text[f.start : f.end] == f.text  # offsets always slice the original
        assert 0.0 <= f.score <= 1.0 and f.category in tm.CATEGORIES
    return {(f.category, f.text) for f in flags if f.source == "lexicon"}


@pytest.mark.parametrize(
    ("text", "category", "matched"),
    [
        ("you are an idiot", "insult", "idiot"),
        ("you are an 1d10t", "insult", "1d10t"),
        ("Honestly, you are an i d i o t.", "insult", "i d i o t"),
        ("y o u  s u c k", "insult", "y o u  s u c k"),
        ("y o u s u c k", "insult", "y o u s u c k"),
        ("уоu аrе аn іdіоt", "insult", "іdіоt"),  # Cyrillic у о а е і
        ("what an ιdιοτ", "insult", "ιdιοτ"),  # Greek look-alikes
        ("ｙｏｕ ａｒｅ ａｎ ｉｄｉｏｔ", "insult", "ｉｄｉｏｔ"),  # fullwidth
        ("you are an íd\u200biöt", "insult", "íd\u200biöt"),  # accents and a zero-width space
        ("this is fuuuuck", "profanity", "fuuuuck"),
        ("f.u.c.k that", "profanity", "f.u.c.k"),
        ("what the f*ck", "profanity", "f*ck"),
        ("sh!t happens", "profanity", "sh!t"),
        ("$h1t happens", "profanity", "$h1t"),
        ("you @$$hole", "insult", "@$$hole"),
        ("Stop it, motherfucker!", "insult", "motherfucker"),
        ("You are so stupid", "insult", "You are so stupid"),
        ("u r a loser", "insult", "u r a loser"),
        ("I will kill you", "threat", "I will kill you"),
        ("i'll k1ll u tonight", "threat", "i'll k1ll u"),
        ("Watch out, you're dead", "threat", "you're dead"),
        ("I know where you live.", "threat", "I know where you live"),
        ("we're going to bomb the school", "threat", None),  # "we're" form is not in the lexicon
        ("I'm going to bomb the school", "threat", "I'm going to bomb the school"),
        ("Sometimes I want to kill myself", "self_harm", "kill myself"),
        ("I don't want to live anymore", "self_harm", "I don't want to live anymore"),
        ("send nudes pls", "sexual", "send nudes"),
        ("All immigrants are vermin", "hate", "All immigrants are vermin"),
        ("shut up you f4gg0t", "hate", "f4gg0t"),
    ],
)
def test_lexicon_flags_with_original_offsets(moderator, text, category, matched):
    flags = moderator.moderate(text)
    hits = lexicon_hits(flags, text)
    if matched is None:
        assert not any(c == category for c, _ in hits), hits
    else:
        assert (category, matched) in hits, flags


@pytest.mark.parametrize(
    "text",
    [
        "Thank you so much for your help with the project.",
        "Could you please send me the report by Friday?",
        "The weather is lovely today, let us go for a walk.",
        "I disagree with your analysis, but I appreciate the effort.",
        "You are so kind and thoughtful.",
        "Kill the process and restart the server.",
        "The shooting of the film starts tomorrow.",
        "She beat me at chess again.",
        "I need to pass the class assessment.",
        "Please cut the cake into eight pieces.",
        "The plant is going to die without water.",
        "Our address is 1 Main St, Apt 4, and we open at 9.",
        "U.S.A. and U.K. leaders met today.",
        "A B C D E F G are the first letters.",
        "She graduated summa cum laude.",
        "The spices were lovely.",
        "Niger is a country in Africa.",
        "Scunthorpe United won the match.",
        "Have a great weekend!",
        "Good morning everyone, the meeting starts at ten.",
    ],
)
def test_polite_text_is_not_flagged(moderator, text):
    assert moderator.moderate(text) == []


def test_model_flags_whole_sentences(moderator):
    text = "Hello there. You are an 1d10t and everyone knows it! Have a nice day."
    flags = moderator.moderate(text)
    model = [f for f in flags if f.source == "model"]
    assert len(model) == 1
    assert model[0].text == "You are an 1d10t and everyone knows it!"
    assert model[0].category == "insult" and model[0].score >= 0.9
    assert ("insult", "1d10t") in lexicon_hits(flags, text)
    assert [f.start for f in flags] == sorted(f.start for f in flags)

    profane = moderator.moderate("This is bullshit.")
    assert any(f.source == "model" and f.category == "profanity" for f in profane)


def test_model_can_be_disabled():
    moderator = tm.TextModerator(use_model=False)
    flags = moderator.moderate("you are a fucking idiot")
    assert flags and all(f.source == "lexicon" for f in flags)
    assert "profanity-check@off" in moderator.info.version


def test_normalize_keeps_an_origin_map():
    text = "Ｈｉ 1d10t\u200b, ｆ.u.c.k"
    norm = tm.normalize(text)
    assert norm.text == "hi idiot, fuck"
    assert len(norm.text) == len(norm.origin)
    start = norm.text.index("idiot")
    assert norm.original_span(start, start + 5) == (3, 8)
    plain = tm.normalize(text, join_spaced=False)
    assert plain.text == "hi idiot, f.u.c.k"


def test_empty_and_whitespace(moderator):
    assert moderator.moderate("") == [] and moderator.moderate("   \n") == []


def test_lexicon_files_extend_the_builtin(tmp_path):
    yaml_file = tmp_path / "extra.yaml"
    yaml_file.write_text("insult:\n  - nincompoop\n  - {pattern: 'couch potato', score: 0.4}\n", encoding="utf-8")
    text_file = tmp_path / "extra.txt"
    text_file.write_text("# house rules\nthreat@0.75: (i|we) will (egg|toilet paper) your house\n", encoding="utf-8")
    moderator = tm.TextModerator(lexicon_paths=[yaml_file, text_file], use_model=False)
    assert len(moderator.lexicon) == len(tm.Lexicon.builtin()) + 3
    text = "You n1nc0mp00p, we will egg your house, you couch potato."
    hits = {(f.category, f.text, f.score) for f in moderator.moderate(text)}
    assert ("insult", "n1nc0mp00p", 0.85) in hits
    assert ("threat", "we will egg your house", 0.75) in hits
    assert ("insult", "couch potato", 0.4) in hits
    assert moderator.info.version != tm.TextModerator(use_model=False).info.version


@pytest.mark.parametrize(
    "content",
    [
        "weird_category: something\n",
        "insult something without colon\n",
        "insult: (unbalanced\n",
        "insult@2: x\n",
        "insult@high: x\n",
    ],
)
def test_bad_lexicon_files_are_permanent_errors(tmp_path, content):
    path = tmp_path / "bad.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(PermanentEngineError):
        tm.Lexicon.from_file(path)


def test_bad_yaml_lexicon(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("insult:\n  - {score: 0.5}\n", encoding="utf-8")
    with pytest.raises(PermanentEngineError):
        tm.Lexicon.from_file(path)
    path.write_text("- just a list\n", encoding="utf-8")
    with pytest.raises(PermanentEngineError):
        tm.Lexicon.from_file(path)


def test_pattern_compiler():
    rx = tm.compile_pattern("i('ll| will) kill (you|u)")
    assert rx.search("i'll kill you") and rx.search("i will kiiill u") and rx.search("ill kill you")
    assert not rx.search("i will skill you")  # word boundaries
    assert tm.compile_pattern("ass").search("ass") and not tm.compile_pattern("ass").search("as")
    assert tm.compile_pattern("*fuck*").search("absofuckinglutely")
