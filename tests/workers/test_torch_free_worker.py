"""A worker with the default configuration runs every engine of every queue without importing torch.

torch (and Ultralytics, torchvision, sentence-transformers) costs a worker ~10 s of imports at start
and several hundred MiB; the default engines run on onnxruntime, CTranslate2 and small C libraries.
torch stays for configured weights (``.pt`` detectors, the torch backends) and for making the ONNX
exports, in their own process (workers/engines/exports.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "torchvision", "ultralytics", "sentence_transformers", "transformers")

_PRELOAD_ALL = """
import json, sys, django
django.setup()
import numpy as np
from workers.process import PRELOADERS, wanted_engines
names = wanted_engines("all")
engines = {name: PRELOADERS[name]() for name in names}
frame = np.zeros((240, 320, 3), np.uint8)
for name in ("detect", "objects", "nsfw", "faces"):
    engines[name].detect([frame]) if name != "nsfw" else engines[name].score([frame])
engines["tags"].analyze([frame])
engines["text_embed"].embed(["harbour ferry timetable"])
engines["transcribe"].transcribe(np.zeros(16000, np.float32))
loaded = sorted({m.split(".")[0] for m in sys.modules})
print(json.dumps({"engines": names, "loaded": loaded}))
"""


def test_a_worker_of_every_queue_loads_and_runs_its_engines_without_torch():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "mediaintel.settings_test", "MEDIAINTEL_WORKER_ROLE": "all",
           "MEDIAINTEL_PRELOAD": "role"}
    for var in [v for v in env if v.endswith("_BACKEND") or v.endswith("_WEIGHTS")]:
        env.pop(var)
    out = subprocess.run([sys.executable, "-c", _PRELOAD_ALL], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=900, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert {"transcribe", "ocr", "detect", "objects", "nsfw", "faces", "tags", "text_embed",
            "text_flags"} <= set(got["engines"])
    assert sorted(set(got["loaded"]) & set(HEAVY)) == []
