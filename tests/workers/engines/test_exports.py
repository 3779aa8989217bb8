"""Exports made once into the model cache, in a separate process, under a lock (workers/engines/exports.py).

Real child processes and real ``flock``s; the export functions below are cheap stand-ins for the ONNX
exports (they run in the child exactly as ``export_onnx`` does).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from workers.engines.base import PermanentEngineError
from workers.engines.exports import ensure_export, export_dir

ROOT = Path(__file__).resolve().parents[3]
HERE = "tests.workers.engines.test_exports"


def slow_export(out_dir: Path, source: str | None) -> None:
    """Count each run in the file ``source`` names, take a while, write one file."""
    with open(str(source), "a") as f:
        f.write("run\n")
    time.sleep(1.5)
    (out_dir / "model.txt").write_text("exported")


def failing_export(out_dir: Path, source: str | None) -> None:
    (out_dir / "half.txt").write_text("half")
    raise RuntimeError("the weights do not fit this architecture")


def test_concurrent_askers_get_one_export_made_once(tmp_path):
    runs = tmp_path / "runs.txt"
    got: list[Path] = []
    askers = [threading.Thread(target=lambda: got.append(
        ensure_export("fake", "abc-r1", f"{HERE}:slow_export", source=str(runs), cache=tmp_path / "cache")))
        for _ in range(3)]
    for t in askers:
        t.start()
    # and one from another process, as a second worker would
    other = subprocess.run([sys.executable, "-c", "from workers.engines.exports import ensure_export; "
                            f"print(ensure_export('fake', 'abc-r1', '{HERE}:slow_export', source={str(runs)!r}, "
                            f"cache={str(tmp_path / 'cache')!r}))"], cwd=ROOT, capture_output=True, text=True,
                           timeout=120, check=False)
    for t in askers:
        t.join()
    assert other.returncode == 0, other.stderr[-2000:]
    folder = export_dir("fake", "abc-r1", tmp_path / "cache")
    assert set(got) == {folder} and Path(other.stdout.strip()) == folder
    assert (folder / "model.txt").read_text() == "exported"
    assert runs.read_text().count("run") == 1
    leftovers = [p.name for p in folder.parent.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []
    # present: returned at once, no child process
    t0 = time.perf_counter()
    assert ensure_export("fake", "abc-r1", f"{HERE}:slow_export", source=str(runs), cache=tmp_path / "cache") == folder
    assert runs.read_text().count("run") == 1 and time.perf_counter() - t0 < 1.0


def test_failed_export_names_the_cause_and_leaves_nothing_behind(tmp_path):
    with pytest.raises(PermanentEngineError, match="do not fit this architecture"):
        ensure_export("fake", "bad-r1", f"{HERE}:failing_export", cache=tmp_path)
    assert [p.name for p in (tmp_path / "fake").iterdir() if not p.name.endswith(".lock")] == []
