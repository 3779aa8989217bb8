"""Memory footprint and cold start of the stack as ``make run`` starts it, every model warm.

    MEDIAINTEL_PROFILE=test .venv/bin/python bench/footprint.py [--videos 20]

Two modes in the same run, each on a fresh stack (bench/_assets.py: gunicorn ``-w 2``, worker
``--role all -c 3``, search worker ``-c 1``; ``MEDIAINTEL_PRELOAD=role``):

* baseline: ``MEDIAINTEL_SHARED_MODELS=0`` — every pool child loads its own copy of its engines;
* shared: ``MEDIAINTEL_SHARED_MODELS=1`` — the worker's main process loads them before the fork.

Cold start: from starting the processes to the web answering, to every worker process reporting
its engines warm, and from the web being up (first upload at once) to that 45 s video ``ready``.
PSS (/proc/<pid>/smaps_rollup) of every process after warm-up (first video + a search query)
and after ``--videos`` more videos. Writes ``## Footprint and cold start`` of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench._assets import Stack, pss_mb, video_variants  # noqa: E402
from bench._report import commit, machine_line, md_table, write_section  # noqa: E402

MODES = {"baseline (each child loads its models)": {"MEDIAINTEL_SHARED_MODELS": "0", "MEDIAINTEL_PRELOAD": "role"},
         "shared (loaded before the fork)": {"MEDIAINTEL_SHARED_MODELS": "1", "MEDIAINTEL_PRELOAD": "role"}}


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
        return {"web_up": t_web - t0, "models_warm": t_warm - t0, "first_ready_after_web": first_wall,
                "warm": warm, "after": after, "batch_wall": batch_wall}
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
    ap.add_argument("--only", choices=["baseline", "shared"], help="one mode only (a quick look; never written)")
    a = ap.parse_args()
    os.environ.setdefault("MEDIAINTEL_PROFILE", "test")
    files = video_variants(a.videos + 2)
    load0 = os.getloadavg()[0]
    results = {}
    for k, (mode, env) in enumerate(MODES.items()):
        if a.only and not mode.startswith(a.only):
            continue
        results[mode] = run_mode(env, files[2:], files[k])
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
    text = f"""`bench/footprint.py` — {machine_line()}, commit {commit()}, {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC; load average {load0:.1f} → {load1:.1f} (shared machine: expect noise).
Stack as `make run` starts it: gunicorn `-w 2` + `python -m workers --role all -c 3` + search worker `-c 1`, `MEDIAINTEL_PRELOAD=role` (every engine of each worker's queues loaded at start). Both modes in this run, one after the other, each on a fresh stack; the first video is uploaded the moment the web answers (cold start), then one search query; then {a.videos} more 45 s 720p videos with speech (distinct bytes) are uploaded at once.

{md_table(rows)}

{md_table(detail)}

PSS counts a shared page once across the processes that map it (divided among them), so the total is the
memory the stack really holds; RSS counts shared pages in every process. faster-whisper (CTranslate2) starts
its thread pool when it loads, which does not survive a fork: it is loaded in each pool child after the fork in
both modes; every other engine is loaded in the worker's main process in the shared mode.
"""
    print(text)
    if a.write and not a.only:
        write_section("Footprint and cold start", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
