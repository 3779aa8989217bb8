"""Per-process setup of worker children: CPU threads per child, optional model preloading.

A prefork worker runs ``concurrency`` children on the host's cores; each numeric library
(torch, OpenMP, CTranslate2, onnxruntime) would otherwise start one thread per core in every
child and oversubscribe the CPU. ``python -m workers`` sets ``MEDIAINTEL_THREADS_PER_CHILD``
to ``max(1, cores // concurrency)``; children apply it before any model library is imported.
"""

from __future__ import annotations

import logging
import os
import time

log = logging.getLogger("mediaintel.worker")

THREAD_VARS = ("OMP_NUM_THREADS", "OMP_THREAD_LIMIT", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def threads_per_child() -> int:
    return max(1, int(os.environ.get("MEDIAINTEL_THREADS_PER_CHILD", "0") or 0) or (os.cpu_count() or 1))


def limit_threads() -> int:
    """Pin numeric libraries of this process to its share of the cores."""
    n = threads_per_child()
    for var in THREAD_VARS:
        os.environ.setdefault(var, str(n))
    # idle OpenMP threads sleep instead of spinning: on a shared host spinning threads of one
    # engine steal the core another process needs (measured 3-7x slower torch engines)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    log.info("pool child %d: %d CPU threads, CUDA_VISIBLE_DEVICES=%s", os.getpid(), n,
             os.environ.get("CUDA_VISIBLE_DEVICES", "(all)"))
    return n


def _device() -> str:
    from django.conf import settings

    return settings.MEDIAINTEL_DEVICE


#: Same arguments as the tasks pass, so a preloaded engine is the one the first task gets.
PRELOADERS = {
    "transcribe": lambda: __import__("workers.tasks.transcribe", fromlist=["x"]).transcriber(),
    "ocr": lambda: __import__("workers.engines.ocr", fromlist=["x"]).get_ocr(
        lang=os.environ.get("MEDIAINTEL_OCR_LANG", "eng"), device=_device()),
    "detect": lambda: __import__("workers.engines.detect", fromlist=["x"]).get_nudity_detector(device=_device()),
    "nsfw": lambda: __import__("workers.engines.nsfw", fromlist=["x"]).get_classifier(device=_device()),
    "faces": lambda: __import__("workers.engines.faces", fromlist=["x"]).get_face_detector(
        __import__("workers.tasks.faces", fromlist=["x"]).face_config()),
    "tags": lambda: __import__("workers.engines.image_embed", fromlist=["x"]).get_embedder(device=_device()),
    "text_embed": lambda: __import__("workers.engines.text_embed", fromlist=["x"]).get_text_embedder(
        device=_device()),
    "text_flags": lambda: __import__("workers.engines.text_moderation", fromlist=["x"]).get_text_moderator(),
}


def preload() -> None:
    """Load the engines named in ``MEDIAINTEL_PRELOAD`` (comma list, or ``all``) so first tasks are warm."""
    wanted = os.environ.get("MEDIAINTEL_PRELOAD", "")
    names = list(PRELOADERS) if wanted == "all" else [w.strip() for w in wanted.split(",") if w.strip()]
    for name in names:
        t0 = time.perf_counter()
        try:
            PRELOADERS[name]()
            log.info("preloaded %s in %.2fs", name, time.perf_counter() - t0)
        except Exception as e:  # a missing optional engine must not stop the worker
            log.warning("could not preload %s: %s", name, e)
