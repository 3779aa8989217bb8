"""The engine version a stage runs under now: the catalog's, unless the app that owns the stage's
version registered a provider for it. ``moderate`` is one such: its version is the active policy
version (so ``reprocess --stale`` re-moderates after a policy change), provided by the moderation
app from its ``AppConfig.ready`` — the pipeline imports no feature app above it.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings

from mediacommon.catalog import EngineSpec, spec_for

#: Stage → function giving its current spec, for stages whose version is not the catalog's.
_PROVIDERS: dict[str, Callable[[], EngineSpec]] = {}

#: Stages whose version must come from a provider (the catalog's entry for them is not their version).
PROVIDED = frozenset({"moderate"})


def register_version_provider(stage: str, provider: Callable[[], EngineSpec]) -> None:
    """Makes ``provider`` the source of ``stage``'s current spec (the last registration wins)."""
    _PROVIDERS[stage] = provider


def stage_spec(stage: str) -> EngineSpec:
    """The spec ``stage`` runs under now. A stage in ``PROVIDED`` with no provider registered is a
    set-up error (its app is not installed or not ready), never a silent fallback to the catalog."""
    if stage in _PROVIDERS:
        return _PROVIDERS[stage]()
    if stage in PROVIDED:
        raise LookupError(f"no version provider registered for stage {stage!r} (is its app installed?)")
    return spec_for(stage, settings.MEDIAINTEL_STAGES)
