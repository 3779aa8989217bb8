"""Which device an engine runs on: the one place that turns a requested device into the device used.

Invariants:

- A request is ``auto``, ``cpu`` or ``cuda`` (anything else is a :class:`PermanentEngineError`).
  ``cpu`` is always honoured; ``auto`` takes CUDA when the engine's runtime can use it, silently.
- ``cuda`` on a host where the engine's runtime cannot reach a CUDA device (no GPU or driver, the
  CPU build of onnxruntime, ctranslate2 without CUDA) runs on ``cpu`` and logs ONE warning per
  process per (engine, reason), naming the engine and why. Work is never refused for want of a GPU.
- Engines record the device they actually use (``EngineInfo.device``), never the one asked for.

Runtimes: ``torch`` (open_clip, sentence-transformers, openai-whisper, Ultralytics ``.pt``),
``onnxruntime`` (NudeNet, open_nsfw, RapidOCR) and ``ctranslate2`` (faster-whisper). The checks
look at the process's view of the hardware, so ``CUDA_VISIBLE_DEVICES`` (``--gpu N``) is respected.
Pure: no Django, no environment reads; the request comes in as an argument.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from typing import Any

from workers.engines.base import PermanentEngineError

log = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda")
RUNTIMES = ("torch", "onnxruntime", "ctranslate2")
CUDA_EP = "CUDAExecutionProvider"
CPU_EP = "CPUExecutionProvider"

_warned: set[tuple[str, str]] = set()
_warned_lock = threading.Lock()


def normalise(requested: str | None) -> str:
    """``auto`` / ``cpu`` / ``cuda`` from a request (``None`` or ``""`` is ``auto``; ``cuda:0`` is ``cuda``)."""
    value = (requested or "auto").strip().lower()
    if value.startswith("cuda:"):
        value = "cuda"
    if value not in DEVICES:
        raise PermanentEngineError(f"unknown device {requested!r}; choose one of {', '.join(DEVICES)}")
    return value


def _cuda_device_count() -> int:
    """CUDA devices this process sees (ctranslate2's cheap probe, else torch's); 0 when neither can tell."""
    try:
        import ctranslate2

        return int(ctranslate2.get_cuda_device_count())
    except Exception as exc:  # absent or broken: ask torch
        log.debug("ctranslate2 cannot count CUDA devices (%s); asking torch", exc)
    try:
        import torch

        return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0
    except Exception:
        return 0


@functools.cache
def cuda_unavailable(runtime: str) -> str | None:
    """Why ``runtime`` cannot run on CUDA in this process, or ``None`` when it can (memoised per process)."""
    if runtime == "torch":
        try:
            import torch
        except ImportError:
            return "torch is not installed"
        if not torch.cuda.is_available():
            return "torch.cuda.is_available() is False (no CUDA device or driver visible)"
        return None
    if runtime == "onnxruntime":
        try:
            import onnxruntime
        except ImportError:
            return "onnxruntime is not installed"
        providers = onnxruntime.get_available_providers()
        if CUDA_EP not in providers:
            return (f"onnxruntime has no {CUDA_EP} (providers: {', '.join(providers)}; "
                    f"the GPU image installs onnxruntime-gpu)")
        if _cuda_device_count() == 0:
            return f"onnxruntime has the {CUDA_EP} but no CUDA device is visible"
        return None
    if runtime == "ctranslate2":
        try:
            import ctranslate2
        except ImportError:
            return "ctranslate2 is not installed"
        if ctranslate2.get_cuda_device_count() == 0:
            return "ctranslate2.get_cuda_device_count() is 0 (no CUDA device or driver visible)"
        return None
    raise ValueError(f"unknown runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}")


def warn_fallback(engine: str, reason: str) -> None:
    """Log that ``engine`` runs on CPU instead of CUDA, once per process per (engine, reason)."""
    key = (engine, reason)
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    log.warning("%s: CUDA was asked for but %s; running on cpu", engine, reason)


def resolve_device(requested: str | None, *, engine: str, runtime: str) -> str:
    """The device ``engine`` (on ``runtime``) will use for ``requested``: ``cpu`` or ``cuda``."""
    want = normalise(requested)
    if want == "cpu":
        return "cpu"
    reason = cuda_unavailable(runtime)
    if reason is None:
        return "cuda"
    if want == "cuda":
        warn_fallback(engine, reason)
    return "cpu"


def onnx_providers(device: str) -> list[str]:
    """onnxruntime providers for a resolved device (CPU always last, as the fallback)."""
    return [CUDA_EP, CPU_EP] if device == "cuda" else [CPU_EP]


def onnx_session(model: str | os.PathLike[str], requested: str | None, *, engine: str, threads: int = 0,
                 what: str = "ONNX model") -> tuple[Any, str]:
    """``(session, device)``: an onnxruntime session on ``model`` for the ``requested`` device, and the
    device it really runs on. One set of options for every engine: ``threads`` intra-op threads
    (0: onnxruntime's default), one inter-op thread, threads that sleep rather than spin (CPUs are
    shared by the pool's children), and no CPU memory arena (batches vary in shape, and the arena
    keeps its largest: measured +200 MiB warm at the same speed, bench/runtimes.py). A file
    onnxruntime cannot load is a :class:`PermanentEngineError` naming ``what``."""
    import onnxruntime as ort

    wanted = resolve_device(requested, engine=engine, runtime="onnxruntime")
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.enable_cpu_mem_arena = False
    try:
        session = ort.InferenceSession(str(model), sess_options=opts, providers=onnx_providers(wanted))
    except Exception as exc:
        raise PermanentEngineError(f"cannot load the {what} {model}: {exc}") from exc
    return session, onnx_session_device(session, wanted, engine=engine)


def onnx_session_device(session: Any, device: str, *, engine: str) -> str:
    """The device an onnxruntime session really runs on (its first provider).

    onnxruntime drops the CUDA provider, with only its own error log, when the CUDA/cuDNN libraries
    cannot be loaded; that is a fallback like any other and gets the one warning.
    """
    used = "cuda" if session.get_providers()[:1] == [CUDA_EP] else "cpu"
    if device == "cuda" and used == "cpu":
        warn_fallback(engine, f"onnxruntime could not start the {CUDA_EP} (CUDA/cuDNN libraries missing?)")
    return used


def _reset_for_tests() -> None:
    """Forget memoised probes and warnings (tests only)."""
    cuda_unavailable.cache_clear()
    with _warned_lock:
        _warned.clear()
