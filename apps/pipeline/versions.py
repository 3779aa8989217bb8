"""The engine version a stage runs under now: the catalog's, except ``moderate``, whose version is
the active policy version (so ``reprocess --stale`` re-moderates after a policy change)."""

from __future__ import annotations

from mediacommon.catalog import EngineSpec, spec_for


def stage_spec(stage: str) -> EngineSpec:
    if stage == "moderate":
        from apps.moderation.services import active_policy_version

        pv = active_policy_version()
        return EngineSpec("policy", f"{pv.policy.name}-v{pv.number}")
    return spec_for(stage)
