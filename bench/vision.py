"""Vision benchmark: the object detector's speed per keyframe and its per-class precision/recall.

Run::

    .venv/bin/python bench/vision.py [--repeats N] [--no-doc]

What it does (one process, no database):

* quality: the bundled COCO-80 detector (or ``MEDIAINTEL_DETECT_WEIGHTS`` when set) over the labelled
  set of tests/vision.py (the Debian ``darknet`` sample photos × generated views: mirror, half and
  1.5× scale, 90 % centre crop, JPEG q30), image-level precision and recall per class;
* speed: ms per keyframe on 1280×720 frames made from those photos (the size the keyframes stage
  stores), one at a time and in batches of 8, for the object detector and, as the baseline measured
  in the same run, the NudeNet detector the ``detect`` stage already ran on every keyframe;
* records wall time, the load average at start and end (the host may be shared), prints the tables
  and writes the ``## Vision`` section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench._report import machine, machine_line, md_table, write_section  # noqa: E402
from tests import vision  # noqa: E402

SECTION = "Vision"
FRAME = (1280, 720)
BATCH = 8


def keyframes() -> list[Any]:
    """The labelled photos fitted into 1280×720 frames on black, as PIL images."""
    from PIL import Image

    from tests.media import pattern_array

    return [Image.fromarray(pattern_array(f"photo:{vision.DARKNET_DATA / name}", FRAME)) for name in vision.PHOTOS]


def speed(engine: Any, frames: list[Any], repeats: int) -> tuple[float, float]:
    """(median ms per keyframe one at a time, median ms per keyframe in batches of ``BATCH``)."""
    engine.detect(frames[:1])  # first call: lazy initialisation, not timed
    single = []
    for _ in range(repeats):
        for f in frames:
            t = time.perf_counter()
            engine.detect([f])
            single.append((time.perf_counter() - t) * 1000)
    batch = (frames * BATCH)[:BATCH]
    batched = []
    for _ in range(repeats):
        t = time.perf_counter()
        engine.detect(batch, batch_size=BATCH)
        batched.append((time.perf_counter() - t) * 1000 / BATCH)
    return statistics.median(single), statistics.median(batched)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--no-doc", action="store_true")
    args = p.parse_args(argv)
    if not vision.available():
        print("the Debian package darknet (sample photos) is not installed: apt-get install darknet")
        return 1
    info = machine()
    load_start = os.getloadavg()
    t0 = time.perf_counter()
    from workers.engines.detect import get_nudity_detector, get_object_detector

    t = time.perf_counter()
    objects = get_object_detector()
    load_objects = time.perf_counter() - t
    t = time.perf_counter()
    nudity = get_nudity_detector()
    load_nudity = time.perf_counter() - t

    data = vision.labelled_set()
    found = [{d.label for d in objects.detect([im])[0]} for _, im, _ in data]
    stats = vision.per_class([want for _, _, want in data], found)
    tp = sum(s["tp"] for s in stats.values())
    fp = sum(s["fp"] for s in stats.values())
    fn = sum(s["fn"] for s in stats.values())

    frames = keyframes()
    obj_single, obj_batch = speed(objects, frames, args.repeats)
    nud_single, nud_batch = speed(nudity, frames, args.repeats)
    load_end = os.getloadavg()
    wall = time.perf_counter() - t0

    quality_rows = [("class", "TP", "FP", "FN", "precision", "recall")]
    def ratio(x: float | None) -> str:
        return "—" if x is None else f"{x:.2f}"

    quality_rows += [(label, str(s["tp"]), str(s["fp"]), str(s["fn"]), ratio(s["precision"]), ratio(s["recall"]))
                     for label, s in stats.items()]
    quality_rows.append(("all (micro)", str(tp), str(fp), str(fn), f"{tp / max(1, tp + fp):.2f}",
                         f"{tp / max(1, tp + fn):.2f}"))
    speed_rows = [("detector", "version", "load", "ms/keyframe (one at a time)", f"ms/keyframe (batch of {BATCH})"),
                  (f"objects ({type(objects).__name__})", objects.info.version, f"{load_objects:.1f} s",
                   f"{obj_single:.0f}", f"{obj_batch:.0f}"),
                  ("baseline: nudity (NudeNet 320n)", nudity.info.version, f"{load_nudity:.1f} s",
                   f"{nud_single:.0f}", f"{nud_batch:.0f}")]
    print(md_table(speed_rows))
    print()
    print(md_table(quality_rows))
    text = "\n".join([
        f"{machine_line(info)}; commit {info['commit']}; {info['date']}; {wall:.0f} s wall; load average "
        f"{load_start[0]:.2f} at start, {load_end[0]:.2f} at end (shared host: timings are noisy).",
        "",
        f"Speed on {len(frames)} keyframe-size frames ({FRAME[0]}×{FRAME[1]}, the Darknet sample photos on black), "
        f"median of {args.repeats} passes; the baseline is the detector the `detect` stage already ran on every "
        "keyframe, measured in the same run.",
        "",
        md_table(speed_rows),
        "",
        f"Quality: image-level precision/recall per class over {len(data)} images ({len(vision.PHOTOS)} Darknet "
        f"sample photos × {len(vision.VIEWS)} views: {', '.join(vision.VIEWS)}); labels in tests/vision.py. "
        "tests/workers/engines/test_objects.py holds thresholds set from this run.",
        "",
        md_table(quality_rows),
        "",
    ])
    if not args.no_doc:
        write_section(SECTION, text)
        print(f"wrote the '## {SECTION}' section of docs/benchmarks.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
