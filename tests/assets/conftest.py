"""Ingestion tests: a fresh local blob store per test, and pipeline starts recorded instead of sent."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _storage(isolated_storage):
    return isolated_storage


@pytest.fixture(autouse=True)
def _no_pipeline(monkeypatch):
    """Record the ids whose pipeline would start; no stage message is published."""
    started: list = []
    monkeypatch.setattr("apps.pipeline.services.start_pipeline", lambda pk, **kw: started.append(pk))
    return started
