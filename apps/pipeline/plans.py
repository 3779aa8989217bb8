"""Plans as data: one DAG of stages per media kind.

A stage runs when every stage it ``needs`` is done or skipped. Per-stage limits and
attempts live here too. ``PLAN_VERSION`` changes whenever a plan's shape changes.
"""

from __future__ import annotations

from dataclasses import dataclass

from mediacommon.routing import queue_for_stage

PLAN_VERSION = "2026-12-04.1"


@dataclass(frozen=True)
class Stage:
    name: str
    needs: tuple[str, ...] = ()
    soft_time_limit: int = 600
    time_limit: int = 660
    max_attempts: int = 3

    @property
    def queue(self) -> str:
        return queue_for_stage(self.name)


_VISUAL = ("ocr", "detect", "nsfw", "faces", "hash", "tags")


def _video() -> list[Stage]:
    return [
        Stage("probe"),
        Stage("scenes", ("probe",), 1800, 1860),
        Stage("keyframes", ("scenes",), 1800, 1860),
        *(Stage(s, ("keyframes",), 1800, 1860) for s in _VISUAL),
        Stage("audio", ("probe",), 1800, 1860),
        Stage("transcribe", ("audio",), 7000, 7100),
        Stage("language", ("transcribe", "ocr")),
        Stage("text_embed", ("transcribe", "ocr", "tags", "detect")),  # tags and labels are searchable too
        Stage("text_flags", ("transcribe", "ocr")),
        Stage("moderate", ("detect", "nsfw", "faces", "hash", "tags", "text_flags", "text_embed", "language")),
    ]


def _audio() -> list[Stage]:
    return [
        Stage("probe"),
        Stage("audio", ("probe",), 1800, 1860),
        Stage("transcribe", ("audio",), 7000, 7100),
        Stage("language", ("transcribe",)),
        Stage("text_embed", ("transcribe",)),
        Stage("text_flags", ("transcribe",)),
        Stage("moderate", ("text_flags", "text_embed", "language")),
    ]


def _image() -> list[Stage]:
    return [
        Stage("probe"),
        *(Stage(s, ("probe",)) for s in _VISUAL),
        Stage("language", ("ocr",)),
        Stage("text_embed", ("ocr", "tags", "detect")),
        Stage("text_flags", ("ocr",)),
        Stage("moderate", ("detect", "nsfw", "faces", "hash", "tags", "text_flags", "text_embed", "language")),
    ]


def _text() -> list[Stage]:
    return [
        Stage("text_extract"),
        Stage("language", ("text_extract",)),
        Stage("text_embed", ("text_extract",)),
        Stage("text_flags", ("text_extract",)),
        Stage("moderate", ("text_flags", "text_embed", "language")),
    ]


PLANS: dict[str, list[Stage]] = {"video": _video(), "audio": _audio(), "image": _image(), "text": _text()}


def plan_for(kind: str) -> list[Stage]:
    return PLANS[kind]


def stage_def(kind: str, name: str) -> Stage:
    for s in PLANS[kind]:
        if s.name == name:
            return s
    raise KeyError(f"stage {name!r} is not in the {kind} plan")


def validate() -> None:
    """Every plan is a DAG whose needs exist and whose stages have a queue."""
    for kind, stages in PLANS.items():
        names = [s.name for s in stages]
        assert len(names) == len(set(names)), f"{kind}: duplicate stage"
        seen: set[str] = set()
        for s in stages:  # listed in topological order
            missing = set(s.needs) - seen
            assert not missing, f"{kind}.{s.name} needs {missing} before it"
            s.queue  # noqa: B018 - raises for a stage without a queue
            seen.add(s.name)
