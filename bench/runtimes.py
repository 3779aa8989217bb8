"""torch against onnxruntime for the image tagger and the text embedder: load, latency, memory.

    .venv/bin/python bench/runtimes.py [--repeat 3] [--no-doc]

Each backend runs in a **fresh Python process** (``--child torch|onnx``) that loads what a worker
loads for the ``tags`` and ``text_embed`` stages with that backend (EfficientNet-Lite0 and MiniLM;
``ImageEmbedder`` + ``TextEmbedder`` on torch, ``OnnxImageEmbedder`` + ``OnnxTextEmbedder`` on
onnxruntime, exports already in the model cache as ``make install`` leaves them), then reports:

* load seconds per engine (library imports included: the first engine pays them), the first call apart;
* per-image latency (batch of 1, and per image in a batch of 16) on 16 real 1280×720-ish photos;
* per-text latency (one query, and per text in a batch of 64 transcript-like sentences);
* PSS and RSS of the process with both engines warm (/proc/self/smaps_rollup), and whether torch is
  in ``sys.modules``.

Backends alternate ``--repeat`` times (the medians are reported) since the host may be shared. The
one-time export (``python -m workers.engines.exports --all`` into an empty cache) is timed apart.
Writes ``## Runtimes: torch and ONNX`` of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench._report import commit, machine_line, md_table, write_section  # noqa: E402

SECTION = "Runtimes: torch and ONNX"
THREADS = os.cpu_count() or 1


def _photos() -> list:
    import importlib.util

    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_sample_images

    base = list(load_sample_images().images)
    for package, rel in (("ultralytics", "assets/bus.jpg"), ("ultralytics", "assets/zidane.jpg"),
                         ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg")):
        spec = importlib.util.find_spec(package)
        if spec and spec.origin:
            base.append(np.asarray(Image.open(Path(spec.origin).parent / rel).convert("RGB")))
    out = []
    for i in range(16):  # 16 distinct images: flips and crops of the photos
        im = base[i % len(base)]
        im = im[:, ::-1] if (i // len(base)) % 2 else im
        out.append(np.ascontiguousarray(im[i % 7 * 4 :, i % 5 * 4 :]))
    return out


_SPEECH = ("the council voted to open a new public library near the river with reading rooms for children "
           "heavy rain is expected across the northern valley this weekend so drivers are asked to slow down "
           "the museum will stay open late on friday for a free concert of classical music")


def _texts() -> list[str]:
    words = _SPEECH.split() * 2
    return [" ".join(words[(i * 7) % len(words):] + words[: (i * 7) % len(words)])[: 80 + (i * 37) % 400]
            for i in range(64)]


def _mem() -> tuple[float, float]:
    vals = {}
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines():
        k, _, rest = line.partition(":")
        if k in ("Pss", "Rss"):
            vals[k] = int(rest.split()[0]) / 1024
    return vals["Pss"], vals["Rss"]


def child(backend: str) -> dict:
    photos, texts = _photos(), _texts()  # numpy/PIL/sklearn imported before timing: both backends need them
    out: dict = {"backend": backend}
    base_pss, _ = _mem()
    t0 = time.perf_counter()
    if backend == "torch":
        from workers.engines.image_embed import ImageEmbedder

        tags = ImageEmbedder(device="cpu")
    else:
        from workers.engines.image_embed import OnnxImageEmbedder

        tags = OnnxImageEmbedder(device="cpu", threads=THREADS)
    out["load_tags_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    if backend == "torch":
        from workers.engines.text_embed import TextEmbedder

        text = TextEmbedder(device="cpu")
    else:
        from workers.engines.text_embed_onnx import OnnxTextEmbedder

        text = OnnxTextEmbedder(threads=THREADS)
    out["load_text_s"] = time.perf_counter() - t0
    out["loaded_pss_mib"] = _mem()[0] - base_pss
    t0 = time.perf_counter()
    tags.analyze(photos[:1])
    text.embed(texts[:1])
    out["first_call_s"] = time.perf_counter() - t0

    def best(fn, n=3) -> float:
        times = []
        for _ in range(n):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return min(times)

    out["image_single_ms"] = best(lambda: [tags.analyze([p]) for p in photos]) / len(photos) * 1000
    out["image_batch16_ms"] = best(lambda: tags.analyze(photos, batch_size=16)) / len(photos) * 1000
    out["text_single_ms"] = best(lambda: [text.embed([t]) for t in texts[:16]]) / 16 * 1000
    out["text_batch64_ms"] = best(lambda: text.embed(texts, batch_size=64)) / len(texts) * 1000
    out["pss_mib"], out["rss_mib"] = _mem()
    out["warm_pss_mib"] = out["pss_mib"] - base_pss
    out["torch_imported"] = "torch" in sys.modules
    return out


def run_child(backend: str) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(THREADS), "OMP_WAIT_POLICY": "PASSIVE"}
    done = subprocess.run([sys.executable, __file__, "--child", backend], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=900, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{backend} child failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def cold_export() -> float:
    with tempfile.TemporaryDirectory(prefix="bench-exports-") as cache:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "workers.engines.exports", "--all", "--cache", cache], cwd=ROOT,
                       check=True, capture_output=True, timeout=900)
        return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--child", choices=("torch", "onnx"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-doc", action="store_true")
    a = ap.parse_args(argv)
    if a.child:
        print(json.dumps(child(a.child)))
        return 0
    subprocess.run([sys.executable, "-m", "workers.engines.exports", "--all"], cwd=ROOT, check=True,
                   capture_output=True)  # the cache as `make install` leaves it
    load0 = os.getloadavg()[0]
    runs: dict[str, list[dict]] = {"torch": [], "onnx": []}
    for _ in range(a.repeat):
        for backend in ("torch", "onnx"):
            runs[backend].append(run_child(backend))
    export_s = cold_export()
    load1 = os.getloadavg()[0]
    keys = [("load_tags_s", "load tags s (imports included)", "{:.2f}"),
            ("load_text_s", "load text embedder s", "{:.2f}"),
            ("first_call_s", "first calls s", "{:.2f}"),
            ("image_single_ms", "tags ms/image, batch 1", "{:.1f}"),
            ("image_batch16_ms", "tags ms/image, batch 16", "{:.1f}"),
            ("text_single_ms", "text ms/text, batch 1", "{:.1f}"),
            ("text_batch64_ms", "text ms/text, batch 64", "{:.2f}"),
            ("loaded_pss_mib", "PSS MiB added by loading both", "{:.0f}"),
            ("warm_pss_mib", "PSS MiB added, both loaded and used", "{:.0f}"),
            ("pss_mib", "PSS MiB of the process, both warm", "{:.0f}"),
            ("rss_mib", "RSS MiB, both warm", "{:.0f}")]
    med = {b: {k: statistics.median(r[k] for r in rs) for k, _, _ in keys} for b, rs in runs.items()}
    rows = [(f"measure (median of {a.repeat})", "torch (baseline)", "onnx (default)", "onnx / torch")]
    for k, label, fmt in keys:
        t, o = med["torch"][k], med["onnx"][k]
        rows.append((label, fmt.format(t), fmt.format(o), f"{o / t:.2f}×" if t else "—"))
    rows.append(("torch in sys.modules", str(runs["torch"][0]["torch_imported"]),
                 str(runs["onnx"][0]["torch_imported"]), ""))
    table = md_table(rows)
    print(table)
    print(f"one-time export of both (empty cache): {export_s:.1f} s; load average {load0:.1f} → {load1:.1f}")
    if not a.no_doc:
        write_section(SECTION, f"""`bench/runtimes.py` — {machine_line()}, commit {commit()}, \
{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load average {load0:.1f} → {load1:.1f} (shared machine: \
expect noise).
One fresh process per backend and repetition (torch and ONNX alternating), {THREADS} threads, CPU: it loads the
`tags` engine (EfficientNet-Lite0) and the `text_embed` engine (all-MiniLM-L6-v2) as a worker does, the ONNX
exports already in the model cache; 16 photos, 64 transcript-like sentences (80-480 characters). "Added"
memory is the process's PSS minus its PSS before the first engine import (numpy, Pillow, scikit-learn and
the test photos loaded: the same in both).

{table}

The one-time export of both models into an empty cache (`python -m workers.engines.exports --all`, a torch
process; `make install` and the worker images run it) took {export_s:.1f} s.
""")
    return 0


if __name__ == "__main__":
    sys.exit(main())
