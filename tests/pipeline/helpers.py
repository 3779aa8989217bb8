"""Helpers for pipeline tests: ingest real files, wait for stage states."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from apps.assets.models import MediaAsset
from apps.assets.services import ingest_local_file
from apps.pipeline.models import StageRun
from tests.conftest import wait_for


def ingest_text(tmp_path: Path, text: str, name: str = "doc.txt", faults: dict[str, Any] | None = None) -> MediaAsset:
    p = tmp_path / name
    p.write_text(text)
    res = ingest_local_file(p, metadata={"_faults": faults} if faults else {})
    return res.asset


def stage(asset: MediaAsset, name: str) -> StageRun:
    return StageRun.objects.get(asset=asset, stage=name, current=True)


def wait_status(asset: MediaAsset, statuses: set[str], timeout: float = 120, tick: Any = None) -> MediaAsset:
    def done() -> bool:
        asset.refresh_from_db()
        return asset.status in statuses

    wait_for(done, timeout=timeout, tick=tick, what=f"asset status in {statuses}")
    return asset


def wait_stage(asset: MediaAsset, name: str, statuses: set[str], timeout: float = 120, tick: Any = None) -> StageRun:
    return wait_for(lambda: (lambda r: r if r.status in statuses else None)(stage(asset, name)), timeout=timeout,
                    tick=tick, what=f"stage {name} in {statuses}")
