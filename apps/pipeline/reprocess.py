"""Exact reprocessing: which (asset, stage) pairs need work, from StageRun state and engine versions."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from apps.assets.models import MediaAsset
from apps.pipeline import plans, services
from apps.pipeline.health import stalled_q
from apps.pipeline.models import IN_FLIGHT, StageRun, StageStatus
from apps.pipeline.versions import stage_spec

MODES = ("missing", "stale", "failed", "stuck", "all")


@dataclass
class Selection:
    """Per asset, the stages to run again."""

    stages: dict[str, list[str]]

    @property
    def count(self) -> int:
        return sum(len(v) for v in self.stages.values())


def select(mode: str, *, stage: str | None = None, kind: str | None = None,
           assets: QuerySet[MediaAsset] | None = None) -> Selection:
    """``missing``: planned stages with no run at all; ``stale``: current runs whose engine version
    differs from the configured one; ``failed``: dead/failed runs; ``stuck``: in-flight runs that
    are stalled (queued past the re-dispatch bound, lease lapsed, retry overdue: what the
    reconciler acts on, for an operator who will not wait for it); ``all``: every stage."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}")
    qs = assets if assets is not None else MediaAsset.objects.all()
    if kind:
        qs = qs.filter(kind=kind)
    versions = {}
    out: dict[str, list[str]] = defaultdict(list)
    runs: dict[Any, dict[str, StageRun]] = defaultdict(dict)
    for r in StageRun.objects.filter(asset__in=qs, current=True).only("asset_id", "stage", "status",
                                                                       "engine_version"):
        runs[r.asset_id][r.stage] = r
    stuck: set[int] = set()
    if mode == "stuck":
        stuck = set(StageRun.objects.filter(stalled_q(), asset__in=qs, current=True).values_list("pk", flat=True))
    for asset_id, asset_kind in qs.values_list("pk", "kind"):
        for s in plans.plan_for(asset_kind):
            if stage and s.name != stage:
                continue
            run = runs[asset_id].get(s.name)
            if mode == "stuck":
                if run is not None and run.pk in stuck:
                    out[str(asset_id)].append(s.name)
                continue
            if run is not None and run.status in IN_FLIGHT:
                continue
            if s.name not in versions:
                versions[s.name] = stage_spec(s.name).version
            if (mode == "all"
                    or (mode == "missing" and run is None)
                    or (mode == "stale" and run is not None and run.engine_version != versions[s.name])
                    or (mode == "failed" and run is not None and run.status in (StageStatus.DEAD,
                                                                                 StageStatus.FAILED))):
                out[str(asset_id)].append(s.name)
    return Selection(dict(out))


def run(selection: Selection, *, reason: str, take_over: bool = False) -> int:
    """Start one job per asset for its selected stages (successors follow). Returns jobs started.

    ``take_over`` also restarts selected stages that are in flight (``reprocess --stuck``): a late
    completion by their old worker is then refused (the claim's task id no longer matches).
    """
    n = 0
    for asset_id, stages in selection.stages.items():
        if services.start_pipeline(asset_id, reason=reason, stages=stages, force=True, take_over=take_over):
            n += 1
    return n
