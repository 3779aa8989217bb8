"""Batch throughput: 40 assets through the platform against the same engines run as 2 parallel scripts.

    MEDIAINTEL_PROFILE=test .venv/bin/python bench/batch.py [--videos 20 --images 10 --texts 10]

Assets (bench/_assets.py): 20 variants of the 45 s 720p video with speech (distinct bytes), 10
captioned 1024×768 JPEGs, 10 short text documents. Fair peer, measured in the same run: this file
run as 2 processes (``--direct``), each calling every engine of each asset's plan one after
another in-process, over half of the files each (round robin); its wall is from the first
process starting work (models loaded and warm) to the last finishing. The platform: the stack as
``make run`` starts it (bench/_assets.py, shared models, every engine warm, one warm-up video);
all 40 uploads are sent at once (videos first, the worst order for the short assets); its wall
runs from the first upload to the last asset ``ready``, its CPU is that of every stack process.
Media seconds count video duration (images and texts count as assets only). Writes
``## Batch throughput`` of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench._assets import Stack, cpu_seconds, images, texts, video_variants  # noqa: E402
from bench._report import commit, machine_line, md_table, write_section  # noqa: E402


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def direct(files: list[str]) -> dict:
    """Every engine of each file's plan, one after another in this process (warm models)."""
    import django
    import numpy as np
    from PIL import Image

    django.setup()
    from bench.video import sequential
    from workers import stage_engines as se
    from workers.engines import language, phash, text_extract

    o, nd, ns, ie = se.ocr_engine(), se.nudity_detector(), se.nsfw_classifier(), se.image_embedder()
    te, tm = se.text_embedder(), se.text_moderator()  # the stages' engines as configured (settings)
    sequential(Path(files[0]))  # loads and warms the video engines (its time is not counted)
    t0, c0 = time.time(), _cpu()
    for f in files:
        if f.endswith(".mp4"):
            sequential(Path(f))
        elif f.endswith(".jpg"):
            img = np.asarray(Image.open(f).convert("RGB"))
            read = o.read(img)
            nd.detect([img]), ns.score([img]), phash.compute_batch([img])
            tags = ie.analyze([img])
            txt = [read.text] if read.text else []
            te.embed([*txt, " ".join(label for label, _ in tags[0].tags[:5]) or "image"])
            [tm.moderate(x) for x in txt]
            language.detect(" ".join(txt))
        else:
            doc = text_extract.extract_text(Path(f).read_bytes(), "text/plain")
            parts = [seg.text for seg in doc.segments] or [doc.text]
            te.embed(parts), [tm.moderate(x) for x in parts], language.detect(doc.text)
    return {"start": t0, "end": time.time(), "cpu": _cpu() - c0}


def peer(files: list[Path], procs: int = 2) -> dict:
    """The direct script as ``procs`` parallel processes over the same files."""
    shares = [[str(f) for f in files[k::procs]] for k in range(procs)]
    ps = [subprocess.Popen([sys.executable, __file__, "--direct", *s], cwd=ROOT, stdout=subprocess.PIPE,
                           env={**os.environ, "MEDIAINTEL_ENV": "development", "OMP_NUM_THREADS": "1",
                                "OMP_WAIT_POLICY": "PASSIVE"}) for s in shares]
    outs = []
    for p in ps:
        out, _ = p.communicate(timeout=3600)
        outs.append(json.loads(out.decode().strip().splitlines()[-1]))
    return {"wall": max(o["end"] for o in outs) - min(o["start"] for o in outs), "cpu": sum(o["cpu"] for o in outs)}


def _ts(s: str | None) -> float | None:
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp() if s else None


def platform(files: list[Path], warm: Path) -> dict:
    from bench.footprint import upload, wait_ready
    from bench.video import api, upload_to_ready

    stack = Stack({"MEDIAINTEL_SHARED_MODELS": "1", "MEDIAINTEL_PRELOAD": "role"})
    try:
        stack.start()
        stack.web_up()
        stack.wait_warm()
        upload_to_ready(stack.base, stack.token, warm, timeout=600)
        pids = [p for ps in stack.pids().values() for p in ps]
        c0 = {p: cpu_seconds(p) for p in pids}
        t0 = time.time()
        sent = {}
        for f in files:
            sent[upload(stack, f)] = (f, time.time())
        wait_ready(stack, list(sent), timeout=3600)
        wall = time.time() - t0
        cpu = sum(cpu_seconds(p) - c for p, c in c0.items() if Path(f"/proc/{p}").exists())
        lat: dict[str, list[float]] = defaultdict(list)
        stage_run: dict[str, float] = defaultdict(float)
        stage_wait: dict[str, list[float]] = defaultdict(list)
        failed = 0
        for i, (f, ts) in sent.items():
            d = api(stack.base, stack.token, "GET", f"/api/v1/assets/{i}/")
            failed += d["status"] != "ready"
            ends = [_ts(s["finished_at"]) for s in d["stages"] if s["finished_at"]]
            lat[f.suffix].append(max(ends) - ts if ends else float("nan"))
            for s in d["stages"]:
                stage_run[s["stage"]] += s["run_seconds"] or 0
                if s["started_at"] and s["queued_at"]:
                    stage_wait[s["stage"]].append(_ts(s["started_at"]) - _ts(s["queued_at"]))
        return {"wall": wall, "cpu": cpu, "lat": lat, "stage_run": stage_run, "stage_wait": stage_wait,
                "failed": failed}
    finally:
        stack.stop()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--videos", type=int, default=20)
    ap.add_argument("--images", type=int, default=10)
    ap.add_argument("--texts", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=45.0)
    ap.add_argument("--write", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--direct", nargs="+", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.direct:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mediaintel.settings")
        print(json.dumps(direct(a.direct)))
        return 0
    os.environ.setdefault("MEDIAINTEL_PROFILE", "test")
    vids = video_variants(a.videos + 1, a.seconds)
    files = [*vids[1:], *images(a.images), *texts(a.texts)]
    media_s = a.videos * a.seconds
    load0 = os.getloadavg()[0]
    base = peer(files)
    print("peer", base, flush=True)
    plat = platform(files, vids[0])
    load1 = os.getloadavg()[0]
    n = len(files)
    rows = [("", "wall s", "CPU s", "media s / wall s", "media s / CPU s", "assets / min", "× peer (wall)")]
    for name, r in (("peer: the direct script as 2 parallel processes", base),
                    ("platform: `--role all -c 3` + search worker, shared models", plat)):
        rows.append((name, f"{r['wall']:.0f}", f"{r['cpu']:.0f}", f"{media_s / r['wall']:.2f}",
                     f"{media_s / r['cpu']:.2f}", f"{60 * n / r['wall']:.1f}", f"**{base['wall'] / r['wall']:.2f}×**"))
    lat_rows = [("kind", "assets", "upload → last stage done, median s", "max s")]
    for suffix, kind in ((".mp4", "video"), (".jpg", "image"), (".txt", "text")):
        v = plat["lat"].get(suffix, [])
        if v:
            lat_rows.append((kind, str(len(v)), f"{statistics.median(v):.1f}", f"{max(v):.1f}"))
    stage_rows = [("stage", "run s (all assets)", "queue wait median s", "queue wait max s")]
    for st, run in sorted(plat["stage_run"].items(), key=lambda x: -x[1]):
        w = plat["stage_wait"].get(st, [0.0])
        stage_rows.append((st, f"{run:.1f}", f"{statistics.median(w):.1f}", f"{max(w):.1f}"))
    ratio = base["wall"] / plat["wall"]
    text = f"""`bench/batch.py` — {machine_line()}, commit {commit()}, {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC; load average {load0:.1f} → {load1:.1f} (shared machine: expect noise).
{n} assets: {a.videos} × {a.seconds:.0f} s 720p video with speech (distinct bytes), {a.images} images, {a.texts} texts; {media_s:.0f} media seconds. Peer and platform measured in this run, one after the other; {plat['failed']} platform assets not `ready`.

{md_table(rows)}

Goal: platform ≥ 1.2× the peer's throughput — {'met' if ratio >= 1.2 else 'not met'} ({ratio:.2f}×).

Latency per kind on the platform (all {n} uploads sent at once, videos first):

{md_table(lat_rows)}

Per stage on the platform (sum of run time over all assets; wait = queued → started):

{md_table(stage_rows)}
"""
    print(text)
    if a.write:
        write_section("Batch throughput", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
