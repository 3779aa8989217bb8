"""Idempotent writes of a stage's insight rows: replace the stage's rows as a whole."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import models

BATCH = 1000


def replace(model: type[models.Model], *, asset_id: Any, stage: str, engine: str, engine_version: str,
            rows: Iterable[dict[str, Any]]) -> int:
    """Delete the asset's rows of ``model`` written by ``stage`` and insert ``rows``.

    Call inside the transaction that marks the stage done: a re-run (redelivery, retry,
    reprocess) then leaves exactly one set of rows, never two.
    """
    model.objects.filter(asset_id=asset_id, stage=stage).delete()
    objs = [model(asset_id=asset_id, stage=stage, engine=engine, engine_version=engine_version, **r) for r in rows]
    model.objects.bulk_create(objs, batch_size=BATCH)
    return len(objs)
