"""A pool child starts taking tasks while its per-child engines load, and never loads one twice."""

from __future__ import annotations

import threading

import pytest

from workers import process
from workers.engines.base import cached_engine


@pytest.fixture
def slow_engine(monkeypatch, settings):
    """A preloadable engine whose construction blocks until the test releases it."""
    release, started = threading.Event(), threading.Event()
    built: list[object] = []

    @cached_engine
    def build() -> object:
        started.set()
        assert release.wait(10), "the test never released the load"
        built.append(object())
        return built[-1]

    monkeypatch.setitem(process.PRELOADERS, "slow", build)
    settings.MEDIAINTEL_PRELOAD = "slow"
    return build, release, started, built


def test_child_preload_returns_before_its_engines_are_loaded(slow_engine):
    _build, release, started, built = slow_engine
    thread = process.preload()
    assert started.wait(5), "the engine load began"
    assert thread.is_alive() and built == [], "preload returned while the engine was still loading"
    release.set()
    thread.join(5)
    assert not thread.is_alive() and len(built) == 1


def test_a_task_asking_for_an_engine_still_loading_waits_for_that_load(slow_engine):
    build, release, started, built = slow_engine
    thread = process.preload()
    assert started.wait(5)
    got: list[object] = []
    task = threading.Thread(target=lambda: got.append(build()))
    task.start()
    task.join(0.3)
    assert task.is_alive() and got == [], "the task waits while the engine loads"
    release.set()
    task.join(5)
    thread.join(5)
    assert got == built and len(built) == 1, "the task got the one engine the preload built"
