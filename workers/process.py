"""Per-process setup of worker children: CPU threads per child, optional model preloading.

Model memory is shared across the pool (``MEDIAINTEL_SHARED_MODELS``, on by default): the
worker's main process loads the engines named in ``MEDIAINTEL_PRELOAD`` *before* it forks its
children, so their weights are one set of copy-on-write pages that every child reads (PSS of a
child is a fraction of its RSS). Engines that start threads when they load cannot cross a fork
(their threads do not exist in the child): CTranslate2 (faster-whisper) starts its worker pool
at load, so ``transcribe`` is loaded in each child after the fork (:data:`FORK_UNSAFE`).

A prefork worker runs ``concurrency`` children on the host's cores; each numeric library
(torch, OpenMP, CTranslate2, onnxruntime) would otherwise start one thread per core in every
child and oversubscribe the CPU. ``python -m workers`` sets ``MEDIAINTEL_THREADS_PER_CHILD``
to ``max(1, cores // concurrency)``; children apply it before any model library is imported.
Transcription has its own count (``TranscribeConfig.threads``, ``MEDIAINTEL_TRANSCRIBE_THREADS``):
by default the child's share too. Giving it every core of the worker (2 threads in each of 3
children on 2 cores) was measured to cost 3.3× the CPU per media second on a 40-asset batch
(docs/benchmarks.md "Batch throughput"), so it is opt-in, for workers with few children.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
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


def _stage_engine(name: str, **kwargs: object) -> object:
    from workers import stage_engines

    return getattr(stage_engines, name)(**kwargs)


#: The builders the tasks call (workers/stage_engines.py, from the stages' configuration objects), so a
#: preloaded engine is the one the first task gets. ``text_embed`` is the indexing embedder on a worker
#: that indexes, and the query embedder (its ``query_backend``, ONNX by default) on the search worker.
PRELOADERS = {
    "transcribe": lambda: _stage_engine("transcriber"),
    "ocr": lambda: _stage_engine("ocr_engine"),
    "detect": lambda: _stage_engine("nudity_detector"),
    "objects": lambda: _stage_engine("object_detector"),
    "nsfw": lambda: _stage_engine("nsfw_classifier"),
    "faces": lambda: _stage_engine("face_detector"),
    "tags": lambda: _stage_engine("image_embedder"),
    "text_embed": lambda: _stage_engine("text_embedder", query=_role() == "search"),
    "text_flags": lambda: _stage_engine("text_moderator"),
}


def _role() -> str:
    from django.conf import settings

    return settings.MEDIAINTEL_WORKER_ROLE


#: Engines whose loading starts threads (CTranslate2's replica pool), or that bundle their own OpenMP
#: runtime (the face detector's libgomp, not checked across a fork): loaded after the fork, per child.
FORK_UNSAFE = frozenset({"transcribe", "faces"})

#: Queue → the engines its stages use (``MEDIAINTEL_PRELOAD=role``: the engines of the worker's queues).
QUEUE_ENGINES: dict[str, tuple[str, ...]] = {
    "transcribe": ("transcribe",),
    "ocr": ("ocr",),
    "detect": ("detect", "objects", "nsfw", "faces"),
    "embed": ("tags", "text_embed"),
    "moderate": ("text_flags",),
    "search": ("text_embed",),
}


def wanted_engines(role: str | None = None) -> list[str]:
    """The engines ``MEDIAINTEL_PRELOAD`` names: ``all``, ``role`` (those of the worker's queues,
    ``MEDIAINTEL_WORKER_ROLE``) or a comma list; unknown names are ignored with a warning."""
    from django.conf import settings

    wanted = settings.MEDIAINTEL_PRELOAD
    if wanted == "all":
        return list(PRELOADERS)
    if wanted == "role":
        from mediacommon.routing import queues_for_role

        queues = queues_for_role(role or settings.MEDIAINTEL_WORKER_ROLE,
                                 gpu_workers=settings.MEDIAINTEL_GPU_WORKERS)
        return list(dict.fromkeys(e for q in queues for e in QUEUE_ENGINES.get(q, ())))
    names = [w.strip() for w in wanted.split(",") if w.strip()]
    for unknown in [n for n in names if n not in PRELOADERS]:
        log.warning("MEDIAINTEL_PRELOAD names no engine %r (known: %s)", unknown, ", ".join(PRELOADERS))
    return [n for n in names if n in PRELOADERS]


def _load(names: list[str], where: str) -> None:
    t_all = time.perf_counter()
    for name in names:
        t0 = time.perf_counter()
        try:
            PRELOADERS[name]()
            log.info("preloaded %s in %.2fs (%s %d)", name, time.perf_counter() - t0, where, os.getpid())
        except Exception as e:  # a missing optional engine must not stop the worker
            log.warning("could not preload %s: %s", name, e)
    log.info("engines warm in %s %d: %s (%.2fs)", where, os.getpid(), ",".join(names) or "none",
             time.perf_counter() - t_all)


def preload_shared(role: str) -> list[str]:
    """In the worker's main process, before the pool forks: load the wanted fork-safe engines once,
    for every child to share (no-op unless ``MEDIAINTEL_SHARED_MODELS``). Returns their names."""
    from django.conf import settings

    if not settings.MEDIAINTEL_SHARED_MODELS:
        return []
    names = [n for n in wanted_engines(role) if n not in FORK_UNSAFE]
    if names:
        limit_threads()  # the same thread settings the children inherit
        _load(names, "main process")
    # Every object so far (the engines, the imported modules) goes to the permanent generation:
    # the cyclic GC of a child would otherwise write to each object's header and copy every page
    # of the main process's heap into the child (measured: ~400 MiB private per child).
    gc.collect()
    gc.freeze()
    return names


def preload() -> threading.Thread:
    """In each pool child: load the wanted engines the main process did not (a memoised engine the
    child inherited from the main process is returned at once), so later tasks find them warm.

    The loading runs in a background thread and this returns at once: the child takes its first
    task while its per-child engines (``FORK_UNSAFE``: faster-whisper, 2-4 s) load, since a new
    asset's first stages (probe, decode) need no model. A task that needs an engine still loading
    waits for that one load (:func:`workers.engines.base.cached_engine` builds each engine once,
    under its lock), never loads a second copy."""
    thread = threading.Thread(target=_load, args=(wanted_engines(), "pool child"), name="preload", daemon=True)
    thread.start()
    return thread
