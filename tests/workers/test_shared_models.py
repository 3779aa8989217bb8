"""Pool children share the models their worker's main process loaded before the fork.

Real ``python -m workers`` processes; memory read from /proc/<pid>/smaps_rollup.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _rollup_mib(pid: int) -> dict[str, float]:
    out = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, _, rest = line.partition(":")
        out[key] = int(rest.split()[0]) / 1024
    out["Private"] = out["Private_Clean"] + out["Private_Dirty"]
    return out


def _start_warm(start_worker, name: str, shared: str) -> tuple[list[int], str]:
    """A two-child search worker with the text embedder preloaded; its children and its log."""
    from tests.conftest import ROOT

    log = ROOT / "var" / "test" / f"worker-{name}.log"
    offset = log.stat().st_size if log.exists() else 0
    w = start_worker(role="search", concurrency=2, name=name,
                     env={"MEDIAINTEL_PRELOAD": "text_embed", "MEDIAINTEL_SHARED_MODELS": shared})

    def warm() -> bool:
        text = log.read_bytes()[offset:].decode(errors="replace")
        assert w.proc.poll() is None, text[-3000:]
        return text.count("engines warm in pool child") >= 2

    wait_for(warm, timeout=240, every=0.5, what="both pool children warm")
    return _children(w.proc.pid), log.read_bytes()[offset:].decode(errors="replace")


def _embed_through_workers() -> None:
    from apps.search import remote

    remote.clear_memory_cache()
    for i in range(4):  # two children on the queue: both take some
        qv = remote.embed_query(f"harbour ferry timetable {i}", timeout=60)
        assert len(qv.vector) == 384


def test_pool_children_share_the_model_the_main_process_loaded(start_worker):
    children, log = _start_warm(start_worker, "shared-models", "1")
    assert "engines warm in main process" in log and log.count("preloaded text_embed") == 3, log[-3000:]
    _embed_through_workers()  # the inherited model works in the children after the fork
    for pid in children:
        m = _rollup_mib(pid)
        # the weights and the imported libraries are the main process's pages, not the child's
        assert m["Shared_Clean"] + m["Shared_Dirty"] > 150, m
        assert m["Pss"] < 0.6 * m["Rss"], m


def test_children_without_shared_models_each_hold_their_own_copy(start_worker):
    children_shared, _ = _start_warm(start_worker, "shared-on", "1")
    shared_private = [_rollup_mib(pid)["Private"] for pid in children_shared]
    children_own, log = _start_warm(start_worker, "shared-off", "0")
    assert "engines warm in main process" not in log
    _embed_through_workers()
    own_private = [_rollup_mib(pid)["Private"] for pid in children_own]
    # each child's own copy: the 90 MB embedder and torch's heap, private to every child
    assert min(own_private) > max(shared_private) + 100, (own_private, shared_private)
