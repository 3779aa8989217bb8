"""One label vocabulary for what is seen in images: COCO detector labels and ImageNet tags.

Every raw label (a detector class such as ``"dog"``, an ImageNet tag such as ``"German shepherd"``
or ``"sorrel"``, or a free word such as ``"puppy"``) maps to one *canonical concept* (``"dog"``,
``"horse"``); concepts form a tree (``dog → mammal → animal``). Stdlib-only: the web tier filters
with it and the workers label with it.

Invariants:
- :func:`canonical` is total and deterministic: a label the vocabulary does not know is its own
  concept (lower-cased, ``_`` → space), with no ancestors.
- ``concept in expand(term)`` exactly when ``term``'s concept is ``concept`` or one of its ancestors,
  so a filter for ``expand("animal")`` matches every row whose canonical label lies under "animal".
- The parent map has no cycles; every parent is itself a concept.
"""

from __future__ import annotations

from functools import cache

from mediacommon.imagenet import IMAGENET_LABELS

# concept → parent concept (roots are absent as keys)
PARENT: dict[str, str] = {
    # animals
    "mammal": "animal", "bird": "animal", "fish": "animal", "reptile": "animal", "amphibian": "animal",
    "invertebrate": "animal", "insect": "invertebrate",
    "dog": "mammal", "wild canine": "mammal", "cat": "mammal", "wild cat": "mammal", "horse": "mammal",
    "zebra": "mammal", "giraffe": "mammal", "elephant": "mammal", "bear": "mammal", "sheep": "mammal",
    "cow": "mammal", "pig": "mammal", "primate": "mammal", "rodent": "mammal", "rabbit": "mammal",
    "marine mammal": "mammal", "deer": "mammal", "camel": "mammal", "marsupial": "mammal",
    # vehicles
    "car": "vehicle", "truck": "vehicle", "bus": "vehicle", "motorcycle": "vehicle", "bicycle": "vehicle",
    "train": "vehicle", "boat": "vehicle", "airplane": "vehicle",
    # weapons and weapon-adjacent objects (see WEAPON_ADJACENT)
    "firearm": "weapon", "knife": "blade", "scissors": "blade", "blade": "sharp object",
    # food
    "banana": "food", "apple": "food", "sandwich": "food", "orange": "food", "broccoli": "food",
    "carrot": "food", "hot dog": "food", "pizza": "food", "donut": "food", "cake": "food",
    # furniture, electronics, appliances, kitchenware, sports, accessories
    "chair": "furniture", "couch": "furniture", "bed": "furniture", "dining table": "furniture",
    "potted plant": "plant", "toilet": "furniture", "bench": "furniture",
    "tv": "electronics", "laptop": "electronics", "mouse": "electronics", "remote": "electronics",
    "keyboard": "electronics", "cell phone": "electronics",
    "microwave": "appliance", "oven": "appliance", "toaster": "appliance", "sink": "appliance",
    "refrigerator": "appliance", "hair drier": "appliance",
    "bottle": "kitchenware", "wine glass": "kitchenware", "cup": "kitchenware", "fork": "kitchenware",
    "spoon": "kitchenware", "bowl": "kitchenware",
    "frisbee": "sports equipment", "skis": "sports equipment", "snowboard": "sports equipment",
    "sports ball": "sports equipment", "kite": "sports equipment", "baseball bat": "sports equipment",
    "baseball glove": "sports equipment", "skateboard": "sports equipment", "surfboard": "sports equipment",
    "tennis racket": "sports equipment",
    "backpack": "accessory", "umbrella": "accessory", "handbag": "accessory", "tie": "accessory",
    "suitcase": "accessory",
}

# Words and labels that mean a concept (lower-case). Canonical concepts map to themselves implicitly.
SYNONYMS: dict[str, str] = {
    "people": "person", "human": "person", "man": "person", "woman": "person", "child": "person",
    "boy": "person", "girl": "person", "pedestrian": "person", "persons": "person",
    "ballplayer": "person", "groom": "person", "scuba diver": "person",
    "puppy": "dog", "hound": "dog", "canine": "dog", "dogs": "dog",
    "pony": "horse", "stallion": "horse", "mare": "horse", "foal": "horse", "horses": "horse",
    "kitten": "cat", "kitty": "cat", "cats": "cat", "birds": "bird", "animals": "animal",
    "automobile": "car", "bike": "bicycle", "cycle": "bicycle", "motorbike": "motorcycle",
    "plane": "airplane", "aeroplane": "airplane", "aircraft": "airplane", "ship": "boat",
    "television": "tv", "tvmonitor": "tv", "sofa": "couch", "cellphone": "cell phone",
    "mobile phone": "cell phone", "gun": "firearm", "pistol": "firearm", "handgun": "firearm",
    "rifle": "firearm", "weapons": "weapon", "calf": "cow", "cattle": "cow", "lamb": "sheep",
    "doughnut": "donut",
}

# COCO classes a moderation policy treats as weapon-adjacent (signals, not verdicts).
WEAPON_ADJACENT = frozenset({"knife", "scissors", "baseball bat"})

# ImageNet class-index ranges (inclusive) → concept: the WordNet blocks of the 1000 classes.
_IMAGENET_RANGES: tuple[tuple[int, int, str], ...] = (
    (0, 6, "fish"), (7, 24, "bird"), (25, 32, "amphibian"), (33, 68, "reptile"), (69, 79, "invertebrate"),
    (80, 100, "bird"), (101, 101, "elephant"), (102, 103, "mammal"), (104, 106, "marsupial"),
    (107, 126, "invertebrate"), (127, 146, "bird"), (147, 150, "marine mammal"), (151, 268, "dog"),
    (269, 280, "wild canine"), (281, 285, "cat"), (286, 293, "wild cat"), (294, 297, "bear"),
    (298, 299, "mammal"), (300, 326, "insect"), (327, 329, "invertebrate"), (330, 332, "rabbit"),
    (333, 338, "rodent"), (339, 339, "horse"), (340, 340, "zebra"), (341, 343, "pig"), (344, 344, "mammal"),
    (345, 347, "cow"), (348, 349, "sheep"), (350, 353, "deer"), (354, 355, "camel"), (356, 364, "mammal"),
    (365, 384, "primate"), (385, 386, "elephant"), (387, 388, "mammal"), (389, 397, "fish"),
)

# ImageNet object classes with a COCO (or weapon) concept.
_IMAGENET_NAMES: dict[str, str] = {
    **dict.fromkeys(("ambulance", "beach wagon", "cab", "convertible", "jeep", "limousine", "minivan",
                     "Model T", "racer", "sports car", "police van", "go-kart", "golfcart"), "car"),
    **dict.fromkeys(("pickup", "trailer truck", "garbage truck", "fire engine", "moving van", "tow truck",
                     "tractor", "forklift"), "truck"),
    **dict.fromkeys(("school bus", "trolleybus", "minibus"), "bus"),
    **dict.fromkeys(("bicycle-built-for-two", "mountain bike", "tricycle", "unicycle"), "bicycle"),
    **dict.fromkeys(("motor scooter", "moped"), "motorcycle"),
    **dict.fromkeys(("bullet train", "electric locomotive", "freight car", "steam locomotive", "passenger car",
                     "streetcar"), "train"),
    **dict.fromkeys(("canoe", "catamaran", "fireboat", "gondola", "lifeboat", "liner", "pirate", "schooner",
                     "speedboat", "submarine", "trimaran", "yawl", "container ship"), "boat"),
    **dict.fromkeys(("airliner", "warplane"), "airplane"),
    **dict.fromkeys(("cleaver", "letter opener"), "knife"),
    **dict.fromkeys(("assault rifle", "rifle", "revolver"), "firearm"),
    **dict.fromkeys(("pop bottle", "wine bottle", "water bottle", "beer bottle"), "bottle"),
    **dict.fromkeys(("cup", "coffee mug"), "cup"),
    **dict.fromkeys(("laptop", "notebook"), "laptop"),
    **dict.fromkeys(("desktop computer", "monitor", "screen", "television"), "tv"),
    **dict.fromkeys(("studio couch",), "couch"),
    **dict.fromkeys(("four-poster", "crib", "cradle"), "bed"),
    **dict.fromkeys(("park bench",), "bench"),
    **dict.fromkeys(("purse", "mailbag"), "handbag"),
    **dict.fromkeys(("teddy",), "teddy bear"),
    **dict.fromkeys(("umbrella",), "umbrella"), "backpack": "backpack", "banana": "banana",
    "orange": "orange", "Granny Smith": "apple", "broccoli": "broccoli", "pizza": "pizza",
    "hotdog": "hot dog", "traffic light": "traffic light", "parking meter": "parking meter",
    "ski": "skis", "cellular telephone": "cell phone", "remote control": "remote", "toaster": "toaster",
    "microwave": "microwave", "refrigerator": "refrigerator", "computer keyboard": "keyboard",
    "mouse": "mouse", "dining table": "dining table", "toilet seat": "toilet", "vase": "vase",
    "wall clock": "clock", "analog clock": "clock", "digital clock": "clock",
    **dict.fromkeys(("soccer ball", "tennis ball", "baseball", "golf ball", "volleyball", "basketball",
                     "rugby ball", "croquet ball"), "sports ball"),
}


def _norm(label: str) -> str:
    return " ".join(label.replace("_", " ").strip().lower().split())


@cache
def _imagenet_exact() -> dict[str, str]:
    """ImageNet label exactly as the tagger emits it → concept ("kite" the raptor, "Cardigan" the corgi)."""
    out: dict[str, str] = {}
    for lo, hi, concept in _IMAGENET_RANGES:
        for i in range(lo, hi + 1):
            out[IMAGENET_LABELS[i]] = concept
    out.update(_IMAGENET_NAMES)
    return out


@cache
def _imagenet_set() -> frozenset[str]:
    return frozenset(IMAGENET_LABELS)


@cache
def _imagenet_map() -> dict[str, str]:
    """Lower-cased ImageNet label → concept, for labels typed by people (first meaning wins)."""
    out: dict[str, str] = {}
    for name, concept in _imagenet_exact().items():
        out.setdefault(_norm(name), concept)
    return out


def canonical(label: str, source: str | None = None) -> str:
    """The concept a raw label stands for; ``source="imagenet"`` reads it as an ImageNet class name first
    (where "kite" is a bird of prey, not the COCO toy)."""
    if source == "imagenet" and label in _imagenet_set():
        return _imagenet_exact().get(label) or _norm(label)
    key = _norm(label)
    if key in SYNONYMS:
        return SYNONYMS[key]
    if key in PARENT or key in _children():
        return key
    return _imagenet_map().get(key, key)


def ancestors(concept: str) -> tuple[str, ...]:
    """Parents of a concept, nearest first (``dog`` → ``("mammal", "animal")``)."""
    out: list[str] = []
    node = concept
    while node in PARENT:
        node = PARENT[node]
        out.append(node)
    return tuple(out)


def lineage(label: str, source: str | None = None) -> tuple[str, ...]:
    """The label's concept followed by its ancestors."""
    c = canonical(label, source)
    return (c, *ancestors(c))


@cache
def _children() -> dict[str, tuple[str, ...]]:
    kids: dict[str, list[str]] = {}
    for child, parent in PARENT.items():
        kids.setdefault(parent, []).append(child)
    return {k: tuple(sorted(v)) for k, v in kids.items()}


def expand(term: str) -> frozenset[str]:
    """The term's concept and every concept beneath it (what a filter for ``term`` matches)."""
    root = canonical(term)
    seen = {root}
    stack = [root]
    while stack:
        for child in _children().get(stack.pop(), ()):
            if child not in seen:
                seen.add(child)
                stack.append(child)
    return frozenset(seen)


def raw_labels_for(term: str) -> frozenset[str]:
    """Every known raw label (lower-case) whose concept falls under ``term``: synonyms, ImageNet names."""
    wanted = expand(term)
    found = {c for c in wanted}
    found |= {k for k, v in SYNONYMS.items() if v in wanted}
    found |= {k for k, v in _imagenet_map().items() if v in wanted}
    return frozenset(found)
