"""The built-in two-level taxonomy and the default policy (admins extend both)."""

from __future__ import annotations

import re
from typing import Any

TAXONOMY: list[tuple[str, str, int, str]] = [
    ("sexual/explicit_nudity", "Explicit nudity", 5, "Exposed genitals, breasts or buttocks; pornographic images."),
    ("sexual/suggestive", "Suggestive", 2, "Partial nudity, underwear, sexual innuendo."),
    ("sexual/text", "Sexual language", 3, "Sexually explicit words or descriptions in text or speech."),
    ("violence/weapons", "Weapons", 3, "Guns, knives and other weapons shown."),
    ("violence/graphic", "Graphic violence", 5, "Blood, injury, killing."),
    ("hate/slur", "Hate slur", 5, "Slurs or dehumanising language against a protected group."),
    ("harassment/insult", "Insult", 2, "Insults aimed at a person."),
    ("harassment/threat", "Threat", 5, "Threats of violence against a person."),
    ("profanity", "Profanity", 1, "Swearing not aimed at anyone."),
    ("self_harm", "Self-harm", 5, "Encouraging or describing suicide or self-injury."),
    ("spam/links", "Links and spam", 1, "Many links, contact details or promotions."),
    ("known_bad/hash_match", "Known bad content", 5, "Matches a hash in an enabled block bank."),
    ("people/face", "Face shown", 1, "A human face is visible (face detection only: never who it is)."),
    ("people/faces_count", "Several faces", 1,
     "How many faces one frame shows: score = faces ÷ 10, capped at 1 (0.3 = three or more faces)."),
    ("context/people", "People shown", 1, "Persons detected in a frame; the score grows with how many "
     "(evidence: the count). Not in the default policy: add a rule to route on it."),
]

#: Face signals (apps.moderation.signals): presence scores the best face's confidence; the count
#: category scores ``min(1, count / FACES_PER_FULL_SCORE)``. Neither is in the default rules: a
#: face is not a violation by itself; a policy opts in (e.g. review children's-platform uploads).
FACE_PRESENCE = "people/face"
FACE_COUNT = "people/faces_count"
FACES_PER_FULL_SCORE = 10

#: Text-moderation categories (workers.engines.text_moderation) → taxonomy codes.
TEXT_CATEGORIES = {
    "profanity": "profanity", "insult": "harassment/insult", "threat": "harassment/threat",
    "hate": "hate/slur", "self_harm": "self_harm", "sexual": "sexual/text",
}

#: Nudity-detector labels → taxonomy codes (faces, feet and covered armpits are not signals).
NUDITY_LABELS = {
    "FEMALE_GENITALIA_EXPOSED": "sexual/explicit_nudity", "MALE_GENITALIA_EXPOSED": "sexual/explicit_nudity",
    "FEMALE_BREAST_EXPOSED": "sexual/explicit_nudity", "BUTTOCKS_EXPOSED": "sexual/explicit_nudity",
    "ANUS_EXPOSED": "sexual/explicit_nudity",
    "FEMALE_BREAST_COVERED": "sexual/suggestive", "BUTTOCKS_COVERED": "sexual/suggestive",
    "FEMALE_GENITALIA_COVERED": "sexual/suggestive", "MALE_BREAST_EXPOSED": "sexual/suggestive",
    "BELLY_EXPOSED": "sexual/suggestive",
}

#: Persons in one frame at which the ``context/people`` signal reaches 1.0 (score = count / this).
PEOPLE_FULL_COUNT = 10

#: Object labels (COCO or configured detectors) that are weapons.
WEAPON_LABELS = {"knife", "gun", "pistol", "rifle", "handgun", "firearm", "weapon", "sword"}

#: open_nsfw scores below this are not signals (too weak to matter under any sane threshold).
NSFW_SIGNAL_FLOOR = 0.2

#: Links and web addresses in text; two or more in one chunk make a ``spam/links`` signal.
URL = re.compile(r"\b(?:https?://|www\.)\S+|(?<![\w.-])[\w.-]+\.(?:com|net|org|io|ru|xyz|biz|info)\b", re.I)

DEFAULT_RULES: dict[str, Any] = {
    "categories": {
        "sexual/explicit_nudity": {"review": 0.5, "block": 0.9, "weights": {"nsfw": 1.0, "nudity": 1.0}},
        "sexual/suggestive": {"review": 0.8, "block": 1.01, "weights": {"nudity": 0.8}},
        "sexual/text": {"review": 0.6, "block": 1.01},
        "violence/weapons": {"review": 0.5, "block": 1.01},
        "violence/graphic": {"review": 0.5, "block": 0.95},
        "hate/slur": {"review": 0.5, "block": 0.95},
        "harassment/insult": {"review": 0.7, "block": 1.01},
        "harassment/threat": {"review": 0.5, "block": 1.01},
        "profanity": {"review": 0.95, "block": 1.01},
        "self_harm": {"review": 0.5, "block": 1.01},
        "spam/links": {"review": 0.9, "block": 1.01},
        "known_bad/hash_match": {"review": 0.5, "block": 0.5},
    },
    "bank_on_reject": None,
}
