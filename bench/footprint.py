"""Memory footprint and cold start of the stack as ``make run`` starts it, every model warm.

    MEDIAINTEL_PROFILE=test .venv/bin/python bench/footprint.py [--videos 20]

Modes in the same run, each on a fresh stack (bench/_assets.py: gunicorn ``-w 2``, worker
``--role all -c 3``, search worker ``-c 1``; ``MEDIAINTEL_PRELOAD=role``); ``--modes`` picks some:

* ``per-child``: ``MEDIAINTEL_SHARED_MODELS=0`` — every pool child loads its own copy of its engines;
  text embedding (indexing and queries) and tags on torch;
* ``shared-torch``: ``MEDIAINTEL_SHARED_MODELS=1`` — the worker's main process loads them before the
  fork; text embedding and tags on torch;
* ``shared-onnx``: as ``shared-torch``, with text embedding and tags on onnxruntime (the defaults).

Model load times per engine at worker start come from the workers' ``preloaded <engine> in <s>``
log lines (main process and each pool child).

Cold start: from starting the processes to the web answering, to every worker process reporting
its engines warm, and from the web being up (first upload at once) to that 45 s video ``ready``.
PSS (/proc/<pid>/smaps_rollup) of every process after warm-up (first video + a search query)
and after ``--videos`` more videos. Writes ``## Footprint and cold start`` of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench._assets import Stack, pss_mb, video_variants  # noqa: E402
from bench._report import commit, machine_line, md_table, write_section  # noqa: E402

_TORCH = {"MEDIAINTEL_TEXT_EMBED_QUERY_BACKEND": "torch", "MEDIAINTEL_TEXT_EMBED_BACKEND": "torch",
          "MEDIAINTEL_IMAGE_EMBED_BACKEND": "torch"}
_ONNX = {"MEDIAINTEL_TEXT_EMBED_QUERY_BACKEND": "onnx", "MEDIAINTEL_TEXT_EMBED_BACKEND": "onnx",
         "MEDIAINTEL_IMAGE_EMBED_BACKEND": "onnx"}
MODES = {
    "per-child": ("each child loads its models, torch text embedding and tags",
                  {"MEDIAINTEL_SHARED_MODELS": "0", "MEDIAINTEL_PRELOAD": "role", **_TORCH}),
    "shared-torch": ("loaded before the fork, torch text embedding and tags",
                     {"MEDIAINTEL_SHARED_MODELS": "1", "MEDIAINTEL_PRELOAD": "role", **_TORCH}),
    "shared-onnx": ("loaded before the fork, ONNX text embedding and tags (the defaults)",
                    {"MEDIAINTEL_SHARED_MODELS": "1", "MEDIAINTEL_PRELOAD": "role", **_ONNX}),
}
_PRELOADED = re.compile(r"preloaded (\w+) in ([\d.]+)s \((main process|pool child) (\d+)\)")


def load_times(log: str) -> dict[str, dict[str, float]]:
    """``"main process <pid>"`` / ``"pool child <pid>"`` → engine → seconds its preload took."""
    out: dict[str, dict[str, float]] = {}
    for engine, seconds, where, pid in _PRELOADED.findall(log):
        out.setdefault(f"{where} {pid}", {})[engine] = float(seconds)
    return out


def snapshot(stack: Stack) -> dict[str, list[tuple[int, float, float]]]:
    return {role: [(pid, *pss_mb(pid)) for pid in pids] for role, pids in stack.pids().items()}


def wait_ready(stack: Stack, ids: list[str], timeout: float) -> None:
    from bench.video import api

    pending = set(ids)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for i in list(pending):
            if api(stack.base, stack.token, "GET", f"/api/v1/assets/{i}/")["status"] in ("ready", "failed"):
                pending.discard(i)
        time.sleep(1)
    if pending:
        raise TimeoutError(f"{len(pending)} assets not ready after {timeout}s")


def upload(stack: Stack, path: Path) -> str:
    from bench.video import api

    return api(stack.base, stack.token, "POST", f"/api/v1/assets/?title={path.stem}", path.read_bytes(),
               {"Content-Type": "application/octet-stream",
                "Content-Disposition": f'attachment; filename="{path.name}"'})["id"]


def run_mode(env: dict[str, str], videos: list[Path], first: Path) -> dict:
    from bench.video import api, upload_to_ready

    stack = Stack(env)
    try:
        t0 = stack.start()
        t_web = stack.web_up()
        first_wall, _ = upload_to_ready(stack.base, stack.token, first, timeout=600)
        t_warm = stack.wait_warm()
        api(stack.base, stack.token, "GET", "/api/v1/search/?" + urllib.parse.urlencode({"q": "harbour ferry"}))
        warm = snapshot(stack)
        ids = [upload(stack, v) for v in videos]
        t1 = time.monotonic()
        wait_ready(stack, ids, timeout=60 * len(videos) + 300)
        batch_wall = time.monotonic() - t1
        after = snapshot(stack)
        loads = {role: load_times(stack.log(role)) for role in ("worker", "search")}
        return {"web_up": t_web - t0, "models_warm": t_warm - t0, "first_ready_after_web": first_wall,
                "warm": warm, "after": after, "batch_wall": batch_wall, "loads": loads}
    finally:
        stack.stop()


def total(snap: dict[str, list[tuple[int, float, float]]], roles: tuple[str, ...] = ("web", "worker", "search")) -> float:
    return sum(p for r in roles for _, p, _ in snap[r])


def describe(snap: dict[str, list[tuple[int, float, float]]]) -> str:
    parts = []
    for role in ("web", "worker", "search"):
        procs = snap[role]
        parts.append(f"{role}: " + " + ".join(f"{p:.0f}" for _, p, _ in procs) + f" = {sum(p for _, p, _ in procs):.0f}")
    return "; ".join(parts)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--videos", type=int, default=20)
    ap.add_argument("--write", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--modes", default=",".join(MODES), help=f"comma list of {', '.join(MODES)}")
    a = ap.parse_args()
    modes = [m.strip() for m in a.modes.split(",") if m.strip()]
    if unknown := [m for m in modes if m not in MODES]:
        ap.error(f"unknown mode(s) {unknown}; choose from {', '.join(MODES)}")
    os.environ.setdefault("MEDIAINTEL_PROFILE", "test")
    files = video_variants(a.videos + len(MODES))  # a distinct first (cold-start) video per mode
    load0 = os.getloadavg()[0]
    results = {}
    for k, key in enumerate(modes):
        mode, env = f"{key} ({MODES[key][0]})", MODES[key][1]
        results[mode] = run_mode(env, files[len(MODES):], files[k])
        r = results[mode]
        print(mode, {k2: v for k2, v in r.items() if not isinstance(v, dict)}, flush=True)
        print("  warm:", describe(r["warm"]), flush=True)
        print("  after:", describe(r["after"]), flush=True)
    load1 = os.getloadavg()[0]
    rows = [("mode", "web up s", "all models warm s", "first video ready s after web up",
             "PSS MiB warm (goal ≤ 2048)", f"PSS MiB after {a.videos} videos", f"{a.videos} videos wall s")]
    for mode, r in results.items():
        rows.append((mode, f"{r['web_up']:.1f}", f"{r['models_warm']:.1f}", f"{r['first_ready_after_web']:.1f}",
                     f"**{total(r['warm']):.0f}**", f"**{total(r['after']):.0f}**", f"{r['batch_wall']:.0f}"))
    detail = [("mode", "when", "PSS MiB per process (main process first; RSS in parentheses for workers)")]
    for mode, r in results.items():
        for when in ("warm", "after"):
            snap = r[when]
            cells = []
            for role in ("web", "worker", "search"):
                procs = snap[role]
                inner = " + ".join(f"{p:.0f}" + (f" ({rss:.0f})" if role != "web" else "") for _, p, rss in procs)
                cells.append(f"{role} {inner} = {sum(p for _, p, _ in procs):.0f}")
            detail.append((mode.split(" ")[0], "after warm-up" if when == "warm" else f"after {a.videos} videos",
                           "; ".join(cells)))
    loads = [("mode", "process", "model load s per engine at worker start (preload)")]
    for mode, r in results.items():
        for role, procs in r["loads"].items():
            for proc, engines in procs.items():
                loads.append((mode.split(" ")[0], f"{role}: {proc.rsplit(' ', 1)[0]}",
                              ", ".join(f"{e} {s:.1f}" for e, s in engines.items()) + f" = {sum(engines.values()):.1f}"))
    text = f"""`bench/footprint.py` — {machine_line()}, commit {commit()}, {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC; load average {load0:.1f} → {load1:.1f} (shared machine: expect noise).
Stack as `make run` starts it: gunicorn `-w 2` + `python -m workers --role all -c 3` + search worker `-c 1`, `MEDIAINTEL_PRELOAD=role` (every engine of each worker's queues loaded at start). Modes in this run, one after the other, each on a fresh stack; the first video is uploaded the moment the web answers (cold start), then one search query; then {a.videos} more 45 s 720p videos with speech (distinct bytes) are uploaded at once.

{md_table(rows)}

{md_table(detail)}

{md_table(loads)}

PSS counts a shared page once across the processes that map it (divided among them), so the total is the
memory the stack really holds; RSS counts shared pages in every process. faster-whisper (CTranslate2) starts
its thread pool when it loads, which does not survive a fork: it is loaded in each pool child after the fork in
every mode; every other engine is loaded in the worker's main process in the shared modes.
"""
    print(text)
    if a.write:
        write_section("Footprint and cold start", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
