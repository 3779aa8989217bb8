"""Abusive-text detection: an obfuscation-resistant lexicon plus alt-profanity-check.

The text is normalised before matching (case folding, NFKC for fullwidth/styled letters,
Cyrillic/Greek/small-capital homoglyphs, accents and zero-width characters removed,
leetspeak ``0 1 3 4 5 7 @ $``, spaced-out letters such as ``i d i o t`` or ``f.u.c.k``
joined). Every normalised character remembers its index in the original text, so each
:class:`TextFlag` slices the original text exactly. Lexicon patterns tolerate repeated
letters (``fuuuck``) and ``*`` for vowels (``f*ck``).

Lexicon pattern syntax (one pattern per entry)::

    idiot                    word (a trailing "s" plural is accepted)
    *fuck*                   "*" at a word edge: any letters there (motherfucker, fucking)
    i ('ll|will) kill (you|u)   spaces separate words; (a|b) alternatives; (x)? optional
    you're                   "'" is optional in the text; "-" is an optional separator

Lexicon files: YAML ``{category: [pattern | {pattern: P, score: S}]}`` or text lines
``category: pattern`` / ``category@0.7: pattern`` (``#`` starts a comment).
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
import threading
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from workers.engines.base import EngineInfo, EngineUnavailable, PermanentEngineError, cached_engine
from workers.engines.text_embed import sentence_spans

__all__ = [
    "CATEGORIES",
    "Lexicon",
    "LexiconEntry",
    "NormalizedText",
    "TextFlag",
    "TextModerator",
    "compile_pattern",
    "get_text_moderator",
    "moderate_text",
    "normalize",
]

Category = Literal["profanity", "insult", "threat", "hate", "self_harm", "sexual"]
CATEGORIES: frozenset[str] = frozenset({"profanity", "insult", "threat", "hate", "self_harm", "sexual"})
DEFAULT_SCORES = {"profanity": 0.7, "insult": 0.85, "threat": 0.9, "hate": 0.95, "self_harm": 0.9, "sexual": 0.7}


@dataclass(frozen=True)
class TextFlag:
    """A flagged span: ``original_text[start:end] == text``."""

    category: str
    score: float
    start: int
    end: int
    text: str
    source: Literal["lexicon", "model"]
    rule: str = ""  # the lexicon pattern, or the model name


# --------------------------------------------------------------------------- normalisation

_CONFUSABLES = {
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p",
    "с": "c", "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i", "ј": "j", "ԁ": "d",
    "ԛ": "q", "ԝ": "w", "ү": "y", "һ": "h", "ӏ": "l", "ɡ": "g",
    "А": "a", "В": "b", "Е": "e", "К": "k", "М": "m", "Н": "h", "О": "o", "Р": "p", "С": "c",
    "Т": "t", "У": "y", "Х": "x", "Ѕ": "s", "І": "i", "Ј": "j", "Ү": "y", "Һ": "h", "Ӏ": "l",
    # Greek
    "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p",
    "τ": "t", "υ": "u", "χ": "x", "ω": "w", "Α": "a", "Β": "b", "Ε": "e", "Η": "h", "Ι": "i",
    "Κ": "k", "Μ": "m", "Ν": "n", "Ο": "o", "Ρ": "p", "Τ": "t", "Υ": "y", "Χ": "x", "Ζ": "z",
    # Armenian, Latin small capitals and look-alikes
    "օ": "o", "ս": "u", "ց": "g", "ո": "n", "հ": "h", "ı": "i",
    "ᴀ": "a", "ʙ": "b", "ᴄ": "c", "ᴅ": "d", "ᴇ": "e", "ɢ": "g", "ʜ": "h", "ɪ": "i", "ᴊ": "j",
    "ᴋ": "k", "ʟ": "l", "ᴍ": "m", "ɴ": "n", "ᴏ": "o", "ᴘ": "p", "ʀ": "r", "ꜱ": "s", "ᴛ": "t",
    "ᴜ": "u", "ᴠ": "v", "ᴡ": "w", "ʏ": "y", "ᴢ": "z",
    # apostrophes
    "’": "'", "‘": "'", "ʼ": "'", "`": "'", "´": "'", "′": "'",
}  # fmt: skip
_LEET = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"}
_TOKEN = re.compile(r"[\w@$!]+")
# Spaced-out letters: >= 3 single letters (or @ $) separated by 1-3 spaces/punctuation.
_ELEM = r"(?:[^\W_]|[@$])"
_SEP = r"[ \t.\-_*·•,~+:;/\\|]{1,3}"
_SPACED_RUN = re.compile(rf"(?<![^\W_])(?<![@$]){_ELEM}(?:{_SEP}{_ELEM}){{2,}}(?![^\W_])(?![@$])")
_SEP_RE = re.compile(_SEP)


@dataclass(frozen=True)
class NormalizedText:
    """Normalised text; ``origin[i]`` is the original index of normalised character ``i``."""

    text: str
    origin: tuple[int, ...]
    spaced: tuple[tuple[int, int], ...] = ()  # joined spaced-out runs, normalised coordinates

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """Original ``[start, end)`` covering normalised ``[start, end)`` (``end > start``)."""
        return self.origin[start], self.origin[end - 1] + 1


def _fold(text: str) -> tuple[list[str], list[int]]:
    chars: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(text):
        if unicodedata.category(ch) == "Cf":  # zero-width, soft hyphen, BOM, direction marks
            continue
        for c in unicodedata.normalize("NFKC", ch):
            c = _CONFUSABLES.get(c, c)
            for d in unicodedata.normalize("NFD", c):
                if unicodedata.combining(d):
                    continue
                for e in d.casefold():
                    chars.append(e)
                    origin.append(i)
    return chars, origin


def _join_spaced(chars: list[str], origin: list[int]) -> tuple[list[str], list[int], list[tuple[int, int]]]:
    """Join ``i d i o t`` / ``f.u.c.k``; a gap of 2+ whitespace characters stays a word break.

    Returns the new characters and origins, and the joined runs in new coordinates.
    """
    text = "".join(chars)
    drop: set[int] = set()
    keep_space: dict[int, str] = {}
    runs = list(_SPACED_RUN.finditer(text))
    for run in runs:
        for sep in _SEP_RE.finditer(text, run.start(), run.end()):
            idx = range(sep.start(), sep.end())
            drop.update(idx)
            if sum(c.isspace() for c in sep.group()) >= 2:
                first_space = next(i for i in idx if chars[i].isspace())
                keep_space[first_space] = " "
                drop.discard(first_space)
    if not drop:
        return chars, origin, []
    out_c, out_o, new_index = [], [], {}
    for i, (c, o) in enumerate(zip(chars, origin, strict=True)):
        if i not in drop:
            new_index[i] = len(out_c)
            out_c.append(keep_space.get(i, c))
            out_o.append(o)
    spans = [(new_index[r.start()], new_index[r.end() - 1] + 1) for r in runs]
    return out_c, out_o, spans


def _deleet(chars: list[str]) -> list[str]:
    """Map leetspeak inside tokens that hold at least one letter (``1d10t`` -> ``idiot``)."""
    text = "".join(chars)
    out = list(chars)
    for tok in _TOKEN.finditer(text):
        word = tok.group()
        if not any(c.isalpha() for c in word):
            continue
        for k, c in enumerate(word):
            i = tok.start() + k
            if c in _LEET:
                out[i] = _LEET[c]
            elif c == "!" and 0 < k < len(word) - 1 and word[k + 1] != "!":  # sh!t, not "wow!"
                out[i] = "i"
    return out


def normalize(text: str, *, join_spaced: bool = True) -> NormalizedText:
    """Fold case, homoglyphs, accents and leetspeak; optionally join spaced-out letters."""
    chars, origin = _fold(text)
    spaced: list[tuple[int, int]] = []
    if join_spaced:
        chars, origin, spaced = _join_spaced(chars, origin)
    return NormalizedText("".join(_deleet(chars)), tuple(origin), tuple(spaced))


# --------------------------------------------------------------------------- lexicon

_VOWELS = set("aeiouy")


def _fold_pattern(s: str) -> str:
    return "".join(_fold(s)[0])


def _literal(s: str, relaxed: bool = False) -> str:
    """Regex for a literal part of a pattern; letter runs and word gaps are possessive.

    Vowels also match ``*`` (``f*ck``) and gaps match any non-letters, ``*`` included, so
    adjacent runs (a vowel, a vowel, a gap) could split a run of ``*`` every possible way:
    exponential backtracking (40 asterisks never finished). Possessive runs take what they can
    and never give it back, which costs only pathological spellings such as ``y**`` for "you".
    """
    out = []
    for c, group in itertools.groupby(_fold_pattern(s)):
        n = len(list(group))
        if c.isalnum():
            atom = _atom_class(c)
            out.append(atom + ("++" if n == 1 else f"{{{n},}}+"))
        elif c.isspace():
            out.append(r"[\W_]*+" if relaxed else r"[\W_]++")
        elif c == "'":
            out.append("'?")
        elif c == "-":
            out.append(r"[\W_]*+")
        elif c == "*":
            out.append(r"[^\W_]*")
        else:
            out.append(re.escape(c) * n)
    return "".join(out)


def compile_pattern(pattern: str, *, relaxed: bool = False) -> re.Pattern[str]:
    """Compile a lexicon pattern (see module docstring) into a regex over normalised text.

    ``relaxed``: no word boundaries and optional word gaps, for joined spaced-out runs
    (``y o u s u c k`` -> ``yousuck``).
    """
    pos = 0

    def seq(start: bool, first: bool) -> str:
        """``start``: what comes first here may begin a match; ``first``: at the pattern's very start."""
        nonlocal pos
        parts: list[str] = []
        lit: list[str] = []
        while pos < len(pattern) and pattern[pos] not in "|)":
            if pattern[pos] != "(":
                lit.append(pattern[pos])
                pos += 1
                continue
            if lit:
                text = "".join(lit)
                parts.append(_lead(text, relaxed, first) if start else _literal(text, relaxed))
                lit = []
                start = first = False
            pos += 1
            alts = [seq(start, first)]
            while pos < len(pattern) and pattern[pos] == "|":
                pos += 1
                alts.append(seq(start, first))
            if pos >= len(pattern) or pattern[pos] != ")":
                raise ValueError(f"unbalanced '(' in lexicon pattern {pattern!r}")
            pos += 1
            optional = pos < len(pattern) and pattern[pos] == "?"
            pos += optional
            parts.append("(?:" + "|".join(alts) + ")" + ("?" if optional else ""))
            start, first = start and optional, False
        if lit:
            text = "".join(lit)
            parts.append(_lead(text, relaxed, first) if start else _literal(text, relaxed))
        return "".join(parts)

    body = seq(True, True)
    if pos != len(pattern) or not body:
        raise ValueError(f"invalid lexicon pattern {pattern!r}")
    if relaxed:
        return re.compile(body)
    return re.compile(rf"(?<![^\W_])(?:{body})s?(?![^\W_])")


def _atom_class(c: str) -> str:
    """The character class a folded pattern letter matches (vowels also match ``*``)."""
    return f"[{c}*]" if c in _VOWELS else re.escape(c)


def _lead(text: str, relaxed: bool, first: bool) -> str:
    """:func:`_literal` for a literal that may begin a match, guarded so matching stays linear.

    A run ``f+`` tried from every position of ``ffff…`` re-scans the run each time (quadratic:
    an 8,000-letter word took seconds). A match that starts inside a run of its first letter
    also matches from the run's first character, which ``finditer`` (leftmost first) reports
    anyway, so a negative lookbehind on the first letter's class only drops redundant attempts.
    A leading ``*`` (any letters before) starts at a word start instead, and the letter after
    it gets the same lookbehind.
    """
    body = _literal(text, relaxed)
    folded = _fold_pattern(text)
    if folded.startswith("*"):
        star = r"[^\W_]*"
        after = f"(?<!{_atom_class(folded[1])})" if folded[1:2].isalnum() else ""
        return (r"(?<![^\W_])" if relaxed and first else "") + star + after + body[len(star):]
    if folded[:1].isalnum():
        return f"(?<!{_atom_class(folded[0])})" + body
    return body


def _outer_letters(pattern: str) -> int:
    """Letters outside parentheses: a pattern needs 4+ to be tried inside spaced-out runs."""
    depth = count = 0
    for c in pattern:
        depth += (c == "(") - (c == ")")
        count += depth == 0 and c.isalnum()
    return count


@dataclass(frozen=True)
class LexiconEntry:
    """One pattern with its category and score."""

    pattern: str
    category: str
    score: float


_BUILTIN: dict[str, list[str | tuple[str, float]]] = {
    "profanity": [
        "*fuck*", "wtf", ("stfu", 0.75), "(bull|horse)?shit(ty|ter|ting|ted|show|load|s)?",
        ("crap(py)?", 0.4), ("piss(ed)?( off)?", 0.5), ("ass", 0.5), ("goddamn(it)?", 0.5),
        ("bollocks", 0.6),
    ],
    "insult": [
        "idiot(ic)?", "moron(ic)?", "imbecile", "cretin", "dumbass", "jackass", "dipshit",
        "(ass|arse)(hole|hat|wipe|clown)", "bastard", "bitch(es|y|ing)?", "son of a bitch", "cunt",
        "twat", "wanker", "dickhead", "douche(bag)?", "scumbag", "cocksucker", "motherfucker",
        "slut", "whore", "retard(ed)?", "piece of (shit|crap|garbage|trash)", ("you suck", 0.8),
        ("shut (the fuck |the hell )?up", 0.6), ("go to hell", 0.6), ("(screw|fuck) (you|u|off)", 0.85),
        "(you|u|ur|you're|youre|you are|u r|you r) (so |such |such a |such an |a |an |the |a total |"
        "a complete |(a )?fucking |absolute |an absolute )?(stupid|dumb|ugly|pathetic|worthless|useless|"
        "disgusting|trash|garbage|loser|failure|waste of (space|oxygen|air)|worst)",
    ],
    "threat": [
        "(i|we)( will|'ll| am going to|'m going to|'m gonna| am gonna| gonna| shall| want to| wanna|"
        " will fucking|'ll fucking| would)? (kill|murder|shoot|stab|strangle|choke|hurt|rape|behead|"
        "slit your throat|break your (neck|legs|face|bones)|beat you up|beat the shit out of) "
        "(you|u|ya|your (family|kids|children|wife|husband|mom|mother)|him|her|them|all of you)",
        "(you're|youre|you are|ur|u r|you r) (so |already |gonna be |going to be )?dead( meat)?",
        "(you're|youre|you are|ur|u r) (going|gonna) (to )?die",
        "i know where you live", ("watch your back", 0.7), ("i will find you", 0.7),
        ("i hope you die", 0.85), ("die in a fire", 0.85),
        ("(go )?(kill|hang|shoot) yourself", 0.85), ("kys", 0.85),
        ("(i|we)( will|'ll| am going to|'m going to|'m gonna| gonna) (bomb|shoot up|blow up) "
         "(the|this|your|a|our) (school|place|office|building|church|mosque|synagogue|temple)", 0.95),
    ],
    "self_harm": [
        "(kill|hurt|harm|hang|shoot) myself", ("(cut|starve) myself", 0.6), "(end|take) my (own )?life",
        "i (really |just )?(want|wanna) (to )?die", ("suicidal", 0.8), ("(commit|committing) suicide", 0.8),
        ("suicide", 0.6), "(i )?(don't|do not|dont) want to (live|be alive|exist)( anymore)?",
        ("better off dead", 0.8), ("self-harm(ing)?", 0.7), ("kms", 0.7),
    ],
    "sexual": [
        "porn*", "nudes", ("send (me )?nudes", 0.9), "(blow|hand|rim)-job", "dick pic",
        ("(have|having) sex with (you|u|me)", 0.8), ("horny", 0.6), "jerk(ing)? off", ("masturbat*", 0.6),
        ("cumshot", 0.8), "milf", ("tits", 0.6), ("titties", 0.6), "pussy", "dildo", ("orgasm", 0.6),
    ],
    "hate": [
        "nigg(er|a|ah|uh)", "faggot", ("fag", 0.75), "kike", "spic", "tranny", "wetback", "raghead",
        "towelhead", "gook", ("subhuman", 0.75), ("white power", 0.8), ("(heil hitler|sieg heil)", 0.9),
        "gas the (jews|muslims|gays|blacks)",
        "(all )?(jews|muslims|blacks|immigrants|gays|mexicans|arabs|asians|women|refugees|migrants) "
        "(are|r) (animals|vermin|rats|parasites|subhuman|cockroaches|filth|scum)",
        ("go back to (your|ur) (own )?country", 0.6),
    ],
}  # fmt: skip


class Lexicon:
    """An immutable list of :class:`LexiconEntry`; patterns compile once."""

    def __init__(self, entries: Iterable[LexiconEntry]):
        self.entries: tuple[LexiconEntry, ...] = tuple(entries)
        for e in self.entries:
            if e.category not in CATEGORIES:
                raise PermanentEngineError(f"unknown moderation category {e.category!r} for {e.pattern!r}")
            if not 0.0 <= e.score <= 1.0:
                raise PermanentEngineError(f"score out of 0..1 for {e.pattern!r}")
        try:
            self._compiled = [(e, compile_pattern(e.pattern)) for e in self.entries]
            self._relaxed = [
                (e, compile_pattern(e.pattern, relaxed=True)) for e in self.entries if _outer_letters(e.pattern) >= 4
            ]
        except (ValueError, re.error) as exc:
            raise PermanentEngineError(f"bad lexicon pattern: {exc}") from exc

    def __len__(self) -> int:
        return len(self.entries)

    def __add__(self, other: Lexicon) -> Lexicon:
        return Lexicon(self.entries + other.entries)

    @property
    def fingerprint(self) -> str:
        """Short hash of the entries (part of the engine version)."""
        blob = "\n".join(f"{e.category}\t{e.score}\t{e.pattern}" for e in self.entries)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    @classmethod
    def from_mapping(cls, data: Mapping[str, Sequence[Any]]) -> Lexicon:
        """``{category: [pattern | (pattern, score) | {"pattern": p, "score": s}]}``."""
        entries = []
        for category, items in data.items():
            default = DEFAULT_SCORES.get(category, 0.8)
            for item in items or ():
                try:
                    if isinstance(item, str):
                        pattern, score = item, default
                    elif isinstance(item, Mapping):
                        pattern, score = str(item["pattern"]), float(item.get("score", default))
                    else:
                        pattern, score = str(item[0]), float(item[1])
                except (KeyError, IndexError, TypeError, ValueError) as exc:
                    raise PermanentEngineError(f"bad lexicon item {item!r} in {category!r}") from exc
                entries.append(LexiconEntry(pattern.strip(), str(category), score))
        return cls(entries)

    @classmethod
    def builtin(cls) -> Lexicon:
        """The built-in lexicon."""
        return cls.from_mapping(_BUILTIN)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Lexicon:
        """Load a ``.yaml``/``.yml`` or text lexicon file (see module docstring)."""
        p = Path(path)
        try:
            raw = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise PermanentEngineError(f"cannot read lexicon {p}: {exc}") from exc
        if p.suffix.lower() in {".yaml", ".yml"}:
            import yaml

            data = yaml.safe_load(raw) or {}
            if not isinstance(data, Mapping):
                raise PermanentEngineError(f"lexicon {p} must map categories to pattern lists")
            return cls.from_mapping(data)
        entries = []
        for n, line in enumerate(raw.splitlines(), 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            head, sep, pattern = line.partition(":")
            if not sep or not pattern.strip():
                raise PermanentEngineError(f"{p}:{n}: expected 'category: pattern'")
            category, _, score = head.strip().partition("@")
            try:
                value = float(score) if score else DEFAULT_SCORES.get(category, 0.8)
            except ValueError as exc:
                raise PermanentEngineError(f"{p}:{n}: bad score {score!r}") from exc
            entries.append(LexiconEntry(pattern.strip(), category, value))
        return cls(entries)

    def find(self, text: str) -> list[TextFlag]:
        """Lexicon flags for ``text`` (matched on both the spaced-joined and the plain view)."""
        found: dict[tuple[str, int, int], TextFlag] = {}

        def add(view: NormalizedText, entry: LexiconEntry, m: re.Match[str]) -> None:
            if m.end() == m.start():
                return
            start, end = view.original_span(m.start(), m.end())
            key = (entry.category, start, end)
            if key not in found or found[key].score < entry.score:
                found[key] = TextFlag(
                    entry.category, entry.score, start, end, text[start:end], "lexicon", entry.pattern
                )

        joined = normalize(text)
        for view in (joined, normalize(text, join_spaced=False)):
            for entry, regex in self._compiled:
                for m in regex.finditer(view.text):
                    add(view, entry, m)
        for run_start, run_end in joined.spaced:
            for entry, regex in self._relaxed:
                for m in regex.finditer(joined.text, run_start, run_end):
                    add(joined, entry, m)
        return _drop_contained(found.values())


def _drop_contained(flags: Iterable[TextFlag]) -> list[TextFlag]:
    """Within a category, drop spans inside a longer span (the longer keeps the higher score)."""
    out: list[TextFlag] = []
    for f in sorted(flags, key=lambda f: (f.category, f.start, -(f.end - f.start))):
        last = out[-1] if out and out[-1].category == f.category else None
        if last and last.start <= f.start and f.end <= last.end:
            if f.score > last.score:
                out[-1] = TextFlag(last.category, f.score, last.start, last.end, last.text, last.source, last.rule)
            continue
        out.append(f)
    return sorted(out, key=lambda f: (f.start, f.end, f.category))


# --------------------------------------------------------------------------- engine

_SECOND_PERSON = re.compile(r"(?<![^\W_])(you|u|ur|your|you're|youre|ya|yourself|yours)(?![^\W_])")
_REPEATS = re.compile(r"(\w)\1{2,}")


class TextModerator:
    """Lexicon + profanity-check moderation of a text; see :meth:`moderate`."""

    def __init__(
        self,
        lexicon: Lexicon | None = None,
        *,
        lexicon_paths: Sequence[str | os.PathLike[str]] = (),
        model_threshold: float = 0.9,
        use_model: bool = True,
    ):
        lex = lexicon if lexicon is not None else Lexicon.builtin()
        for path in lexicon_paths:
            lex = lex + Lexicon.from_file(path)
        self.lexicon = lex
        self.model_threshold = model_threshold
        self._predict = None
        model_version = "off"
        if use_model:
            try:
                import importlib.metadata

                from profanity_check import predict_prob
            except ImportError as exc:
                raise EngineUnavailable("alt-profanity-check is not installed") from exc
            self._predict = predict_prob
            model_version = importlib.metadata.version("alt-profanity-check")
        self._lock = threading.Lock()
        self.info = EngineInfo(
            name="text-moderation",
            version=f"lexicon@{lex.fingerprint};profanity-check@{model_version};thr={model_threshold}",
            params={"entries": len(lex), "model_threshold": model_threshold, "use_model": use_model},
        )

    def _model_flags(self, text: str) -> list[TextFlag]:
        spans = sentence_spans(text, max_chars=400)
        if not spans or self._predict is None:
            return []
        inputs = []
        folded = []
        for start, end in spans:
            norm = _REPEATS.sub(r"\1", normalize(text[start:end]).text)
            folded.append(norm)
            inputs.extend([text[start:end], norm])
        with self._lock:
            probs = self._predict(inputs)
        flags = []
        for i, (start, end) in enumerate(spans):
            score = float(max(probs[2 * i], probs[2 * i + 1]))
            if score >= self.model_threshold:
                category = "insult" if _SECOND_PERSON.search(folded[i]) else "profanity"
                flags.append(
                    TextFlag(category, round(score, 4), start, end, text[start:end], "model", "profanity-check")
                )
        return flags

    def moderate(self, text: str) -> list[TextFlag]:
        """All flags for ``text``, sorted by position; offsets index the original text."""
        if not text or not text.strip():
            return []
        flags = self.lexicon.find(text) + self._model_flags(text)
        return sorted(flags, key=lambda f: (f.start, f.end, f.source, f.category))


@cached_engine
def get_text_moderator(
    lexicon_paths: tuple[str, ...] = (), model_threshold: float = 0.9, use_model: bool = True
) -> TextModerator:
    """Process-wide :class:`TextModerator` (built-in lexicon plus ``lexicon_paths``)."""
    return TextModerator(lexicon_paths=lexicon_paths, model_threshold=model_threshold, use_model=use_model)


def moderate_text(text: str) -> list[TextFlag]:
    """Moderate ``text`` with the default process-wide moderator."""
    return get_text_moderator().moderate(text)
