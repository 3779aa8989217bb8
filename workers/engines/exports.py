"""Files an engine builds once from its weights (ONNX exports), kept in the model cache.

An engine that runs on onnxruntime but whose weights ship as a torch checkpoint needs an export,
made by torch. This module makes it once per (name, fingerprint) and hands back its directory::

    folder = ensure_export("image-embed-onnx", f"{weights_fingerprint(path)}-r1",
                           "workers.engines.image_embed:export_onnx", source=str(path))

Invariants:

- The export runs in a *separate* Python process (``python -m workers.engines.exports run ...``),
  so torch never enters the process that asks for it: ``function`` (``"module:callable"``) is called
  there as ``function(out_dir, source)`` and writes its files into ``out_dir``.
- The result is ``<cache>/<name>/<fingerprint>/``: it appears whole or not at all (the export writes
  into a temporary directory beside it, renamed into place when the function returns). The
  fingerprint names the weights *and* the export's revision: a new revision is a new directory.
- One export at a time per (name, fingerprint) on a host: an exclusive ``flock`` on
  ``<cache>/<name>/.<fingerprint>.lock``; a process that finds the lock held waits for it, then finds
  the directory made. A failed export raises :class:`PermanentEngineError` with the child's stderr.
- ``python -m workers.engines.exports --all`` builds every export of :data:`AHEAD_OF_TIME` for the
  default (bundled) weights ahead of time (``make install``, the worker images); it is idempotent
  and cheap when everything is there. Nothing is downloaded.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from workers.engines.base import EngineUnavailable, PermanentEngineError, model_cache_dir

__all__ = ["AHEAD_OF_TIME", "ensure_export", "export_dir"]

#: ``module:callable`` of each engine's "ensure the default export" function (no arguments but an
#: optional ``cache``; returns the export's directory); ``--all`` calls each.
AHEAD_OF_TIME = (
    "workers.engines.text_embed_onnx:ensure_default_export",
    "workers.engines.image_embed:ensure_default_export",
    "workers.engines.darknet:ensure_default_export",
)

EXPORT_TIMEOUT_S = 900
_ROOT = Path(__file__).resolve().parents[2]  # where ``workers`` is importable from, whatever the cwd


def export_dir(name: str, fingerprint: str, cache: str | os.PathLike[str] | None = None) -> Path:
    """Where the export ``name`` of ``fingerprint`` lives (it may not exist yet)."""
    root = Path(cache).expanduser() if cache else model_cache_dir()
    return root / name / fingerprint


@contextlib.contextmanager
def _locked(lock_path: Path, timeout: float) -> Iterator[None]:
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as f:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise PermanentEngineError(f"waited {timeout:.0f}s for {lock_path}: another export hangs") from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def ensure_export(name: str, fingerprint: str, function: str, *, source: str | None = None,
                  cache: str | os.PathLike[str] | None = None, timeout: float = EXPORT_TIMEOUT_S) -> Path:
    """The directory of the export ``name`` of ``fingerprint``, made by ``function`` in a child process
    when missing (waiting for another process making it). See the module docstring."""
    out = export_dir(name, fingerprint, cache)
    if out.is_dir():
        return out
    with _locked(out.parent / f".{fingerprint}.lock", timeout):
        if out.is_dir():  # another process made it while this one waited
            return out
        tmp = out.parent / f".{fingerprint}.{os.getpid()}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        cmd = [sys.executable, "-m", "workers.engines.exports", "run", function, str(tmp)]
        if source is not None:
            cmd += ["--source", source]
        try:
            done = subprocess.run(cmd, cwd=_ROOT, capture_output=True, text=True, timeout=timeout, check=False)
            if done.returncode != 0:
                raise PermanentEngineError(f"export {name} ({function}) failed: {done.stderr.strip()[-2000:]}")
            os.replace(tmp, out)  # atomic: readers see no directory or the whole one
        except subprocess.TimeoutExpired as exc:
            raise PermanentEngineError(f"export {name} ({function}) took over {timeout:.0f}s") from exc
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def _resolve(function: str):
    module, _, attr = function.partition(":")
    return getattr(importlib.import_module(module), attr)


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m workers.engines.exports",
                                 description="Build the engines' ONNX exports into the model cache (once).")
    ap.add_argument("--all", action="store_true", help="every export of the default weights (idempotent)")
    ap.add_argument("--cache", default=None, help="model cache directory (default: the engines' cache)")
    sub = ap.add_subparsers(dest="cmd")
    run = sub.add_parser("run", help="(internal) call FUNCTION(OUT_DIR, SOURCE) in this process")
    run.add_argument("function")
    run.add_argument("out_dir")
    run.add_argument("--source", default=None)
    a = ap.parse_args(argv)
    if a.cmd == "run":
        out = Path(a.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        _resolve(a.function)(out, a.source)
        return 0
    if not a.all:
        ap.error("nothing to do: pass --all")
    status = 0
    for function in AHEAD_OF_TIME:
        t0 = time.perf_counter()
        try:
            path = _resolve(function)(cache=a.cache)
            print(f"{function}: {path} ({time.perf_counter() - t0:.1f}s)")
        except EngineUnavailable as exc:  # weights not installed here: nothing to export
            print(f"{function}: skipped ({exc})")
        except (PermanentEngineError, OSError) as exc:
            print(f"{function}: error: {exc}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
