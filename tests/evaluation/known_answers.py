"""Engine sets with known answers for the evaluation tests: one that returns the ground truth and
one that is wrong on purpose, with the same methods as workers.evaluation.engines.PipelineEngines."""

from __future__ import annotations

import random
from typing import Any

from workers.evaluation.dataset import Dataset, Item
from workers.evaluation.metrics import Box


class PerfectEngines:
    """Answers every question with the manifest's ground truth."""

    name = "perfect"

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        rng = random.Random(7)
        group = {f: f for i in dataset.items for f in [i.file]}
        for a, b in dataset.near_duplicates:
            group[b] = group[a]
        keys = sorted(set(group.values()))
        codes = {k: f"{rng.getrandbits(256):064x}" for k in keys}
        self.hashes = {f: codes[g] for f, g in group.items()}

    def versions(self) -> dict[str, str]:
        return {"oracle": self.name}

    def image(self, item: Item) -> Any:
        return item.file

    def frame_at(self, item: Item, seconds: float) -> Any:
        return (item.file, seconds)

    def transcribe(self, item: Item) -> tuple[str, str]:
        return item.transcript or "", item.language or "und"

    def language(self, item: Item, text: str) -> str:
        return item.language or "und"

    def ocr(self, item: Item) -> str:
        return item.ocr_text or ""

    def scenes(self, item: Item) -> list[float]:
        return list(item.cuts or ())

    def objects(self, item: Item, image: Any) -> list[Box]:
        return [Box(o.label, o.box, 0.9) for o in item.objects or ()]

    def tags(self, item: Item) -> list[str]:
        return [*(item.tags or ()), "filler a", "filler b"]

    def _moderation(self, item: Item) -> list[tuple[str, float, str]]:
        return [(c, 1.0 if truth else 0.0, "oracle") for c, truth in item.moderation.items()]

    def visual_signals(self, item: Item, image: Any) -> list[tuple[str, float, str]]:
        return self._moderation(item)

    def text_signals(self, item: Item, text: str) -> list[tuple[str, float, str]]:
        return self._moderation(item)

    def phash(self, item: Item) -> str:
        return self.hashes[item.file]


class BrokenEngines(PerfectEngines):
    """Wrong on every question: nothing heard or read, cuts 0.8 s late, wrong labels, moderation
    inverted, near-duplicates hashed as opposites."""

    name = "broken"

    def transcribe(self, item: Item) -> tuple[str, str]:
        return "", "xx"

    def language(self, item: Item, text: str) -> str:
        return "xx"

    def ocr(self, item: Item) -> str:
        return ""

    def scenes(self, item: Item) -> list[float]:
        return [c + 0.8 for c in item.cuts or ()]  # halfway between cuts 1.6 s apart

    def objects(self, item: Item, image: Any) -> list[Box]:
        return [Box("not-" + o.label, o.box, 0.9) for o in item.objects or ()]

    def tags(self, item: Item) -> list[str]:
        return ["filler a", "filler b"]

    def _moderation(self, item: Item) -> list[tuple[str, float, str]]:
        return [(c, 0.0 if truth else 1.0, "oracle") for c, truth in item.moderation.items()]

    def phash(self, item: Item) -> str:
        firsts = {a for a, _ in self.dataset.near_duplicates}
        seconds = {b for _, b in self.dataset.near_duplicates}
        if item.file in firsts:
            return "0" * 64
        if item.file in seconds:
            return "f" * 64
        return super().phash(item)
