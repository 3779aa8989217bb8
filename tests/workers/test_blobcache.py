"""The worker's blob cache (workers/blobcache.py) on real files with real concurrent processes."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT
from workers.blobcache import TMP_PREFIX, BlobCache

MB = 1024 * 1024


def _blob(i: int, size: int = MB) -> tuple[str, bytes]:
    data = (f"blob-{i}-".encode() * (size // 8 + 1))[:size]
    return hashlib.sha256(data).hexdigest(), data


def _fetcher(data: bytes, delay: float = 0.0):
    def fetch(out):
        half = len(data) // 2
        out.write(data[:half])
        if delay:
            time.sleep(delay)
        out.write(data[half:])
    return fetch


def _files(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name != ".evict.lock")


def test_a_fetched_blob_is_complete_and_reused(tmp_path):
    cache = BlobCache(tmp_path, max_bytes=10 * MB, max_age=3600)
    sha, data = _blob(1)
    calls = []

    def fetch(out):
        calls.append(1)
        out.write(data)

    p = cache.path(sha, fetch)
    assert Path(p).read_bytes() == data
    cache.release()
    assert cache.path(sha, fetch) == p and len(calls) == 1
    assert _files(tmp_path) == [sha]  # no temp file left


def test_size_bound_evicts_least_recently_used_first(tmp_path):
    cache = BlobCache(tmp_path, max_bytes=3 * MB, max_age=3600)
    blobs = [_blob(i) for i in range(5)]
    for k, (sha, data) in enumerate(blobs[:3]):
        cache.path(sha, _fetcher(data))
        cache.release()
        os.utime(tmp_path / sha, (1000 + k, 1000 + k))  # distinct use times, oldest first
    cache.path(blobs[0][0], _fetcher(blobs[0][1]))  # a hit: blob 0 becomes the most recently used
    cache.release()
    for sha, data in blobs[3:]:
        cache.path(sha, _fetcher(data))
        cache.release()
    left = set(_files(tmp_path))
    assert sum((tmp_path / n).stat().st_size for n in left) <= 3 * MB
    assert left == {blobs[0][0], blobs[3][0], blobs[4][0]}  # 1 and 2 were the least recently used


def test_age_bound_evicts_entries_unused_for_too_long(tmp_path):
    cache = BlobCache(tmp_path, max_bytes=100 * MB, max_age=60)
    (old, old_data), (new, new_data) = _blob(1), _blob(2)
    cache.path(old, _fetcher(old_data))
    cache.path(new, _fetcher(new_data))
    cache.release()
    os.utime(tmp_path / old, (time.time() - 120, time.time() - 120))
    stats = cache.evict()
    assert _files(tmp_path) == [new]
    assert stats["removed"] == 1 and stats["kept"] == 1


HOLDER = textwrap.dedent("""
    import sys
    from workers.blobcache import BlobCache
    cache = BlobCache(sys.argv[1], max_bytes=0, max_age=0)
    data = sys.argv[3].encode()
    path = cache.path(sys.argv[2], lambda out: out.write(data))
    print(path, flush=True)
    sys.stdin.readline()  # hold it until told
    cache.release()
    print("released", flush=True)
    sys.stdin.readline()
""")


def test_an_entry_in_use_by_another_process_is_never_evicted(tmp_path):
    data = "in use by a stage"
    sha = hashlib.sha256(data.encode()).hexdigest()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path), sha, data], cwd=ROOT,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        path = holder.stdout.readline().strip()
        assert Path(path).read_text() == data
        cache = BlobCache(tmp_path, max_bytes=0, max_age=0)  # everything is over the bounds
        stats = cache.evict()
        assert Path(path).exists() and stats["in_use"] == 1
        assert cache.drop([sha]) == 0 and Path(path).exists()
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "released"
        cache.evict()
        assert not Path(path).exists()
    finally:
        holder.kill()
        holder.wait()


def _fetch_many(root: str, sha: str, data: bytes, rounds: int, q) -> None:
    cache = BlobCache(root, max_bytes=0, max_age=0)  # every fetch also evicts whatever it can
    try:
        for _ in range(rounds):
            path = cache.path(sha, _fetcher(data, delay=0.01))
            with open(path, "rb") as f:  # reopened by path, as stages do
                if f.read() != data:
                    q.put("corrupt")
                    return
            cache.release()
        q.put("ok")
    except Exception as e:
        q.put(f"{type(e).__name__}: {e}")


def _evict_loop(root: str, seconds: float, q) -> None:
    cache = BlobCache(root, max_bytes=0, max_age=0)
    deadline = time.monotonic() + seconds
    n = 0
    while time.monotonic() < deadline:
        n += cache.evict()["removed"]
    q.put(n)


def test_concurrent_processes_fetching_and_evicting_never_see_a_missing_or_partial_blob(tmp_path):
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    sha, data = _blob(7, size=256 * 1024)
    evictor = ctx.Process(target=_evict_loop, args=(str(tmp_path), 4.0, q))
    readers = [ctx.Process(target=_fetch_many, args=(str(tmp_path), sha, data, 30, q)) for _ in range(4)]
    evictor.start()
    for r in readers:
        r.start()
    results = [q.get(timeout=120) for _ in range(5)]
    for p in (evictor, *readers):
        p.join(timeout=30)
    assert sorted(r for r in results if isinstance(r, str)) == ["ok"] * 4, results
    assert not [n for n in _files(tmp_path) if n.startswith(TMP_PREFIX)]


SLOW_WRITER = textwrap.dedent("""
    import sys, time
    from workers.blobcache import BlobCache
    def fetch(out):
        out.write(b"partial")
        out.flush()
        print("writing", flush=True)
        time.sleep(600)
    BlobCache(sys.argv[1], max_bytes=0, max_age=0).path("a" * 64, fetch)
""")


def test_a_download_whose_writer_died_is_removed_but_a_live_one_is_kept(tmp_path):
    writer = subprocess.Popen([sys.executable, "-c", SLOW_WRITER, str(tmp_path)], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "writing"
        cache = BlobCache(tmp_path, max_bytes=0, max_age=0, dead_download_after=0)
        assert cache.evict()["stale_downloads"] == 0
        assert [n for n in _files(tmp_path) if n.startswith(TMP_PREFIX)]  # still being written: kept
        assert not (tmp_path / ("a" * 64)).exists()  # and never visible as an entry
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait()
        assert cache.evict()["stale_downloads"] == 1
        assert _files(tmp_path) == []
    finally:
        writer.kill()
        writer.wait()


def test_drop_unreferenced_removes_only_blobs_no_asset_references(tmp_path):
    cache = BlobCache(tmp_path, max_bytes=100 * MB, max_age=3600)
    (keep, kd), (gone, gd) = _blob(1, 1000), _blob(2, 1000)
    cache.path(keep, _fetcher(kd))
    cache.path(gone, _fetcher(gd))
    cache.release()
    asked = []

    def referenced(names):
        asked.extend(names)
        return {keep}

    assert cache.drop_unreferenced(referenced) == 1
    assert sorted(asked) == sorted([keep, gone])
    assert _files(tmp_path) == [keep]


@pytest.mark.parametrize("bad", ["", "../etc/passwd", "A" * 64, "a" * 63])
def test_only_sha256_names_are_accepted(tmp_path, bad):
    with pytest.raises(ValueError):
        BlobCache(tmp_path, 1, 1).path(bad, lambda out: None)
    assert not tmp_path.exists() or _files(tmp_path) == []


def test_a_task_releases_only_the_entries_its_own_thread_holds(tmp_path):
    import threading

    cache = BlobCache(tmp_path, max_bytes=0, max_age=0)
    (s1, d1), (s2, d2) = _blob(1, 1000), _blob(2, 1000)
    other_holds, other_may_end = threading.Event(), threading.Event()

    def other_task():
        cache.path(s2, _fetcher(d2))
        other_holds.set()
        other_may_end.wait(30)
        cache.release()

    t = threading.Thread(target=other_task)
    t.start()
    assert other_holds.wait(30)
    cache.path(s1, _fetcher(d1))
    cache.release()  # this thread's task ends; the other's still runs
    cache.evict()
    assert _files(tmp_path) == [s2]
    other_may_end.set()
    t.join(30)
    cache.evict()
    assert _files(tmp_path) == []
