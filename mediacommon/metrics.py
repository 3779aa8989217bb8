"""Prometheus metrics shared by the web and the workers, safe across processes.

Multiprocess mode: when ``PROMETHEUS_MULTIPROC_DIR`` is set in the environment *before*
``prometheus_client`` is first imported (the supervisor, the images and the Kubernetes ConfigMap
set it), every process — each gunicorn worker, each Celery pool child — writes its samples to
memory-mapped files in that directory, and a scrape (:func:`exposition`) merges them. Counters and
histograms of a process that exited stay in the merge (they are cumulative: dropping them would
make rates jump); gauges are ``livesum``/``liveall``/``max`` and the files of dead pids are removed
by :func:`mark_process_dead` (gunicorn's ``child_exit``, Celery's ``worker_process_shutdown``) and
by :func:`sweep_dead_pids` on every scrape (a child killed by SIGKILL runs no hook). Without the
variable (tests, a shell) the metrics live in this process only.

Naming: counters end in ``_total``, durations are histograms in seconds, sizes in bytes; labels
are bounded (route templates, stage and engine names, queue names — never ids).
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

__all__ = ["CONTENT_TYPE_LATEST"]

_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_STAGE_SECONDS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200)
_WAIT_SECONDS = (0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600, 14400)
_LOAD_SECONDS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_BATCH = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)

# --- web
HTTP_REQUEST_SECONDS = Histogram(
    "mediaintel_http_request_duration_seconds", "HTTP request latency by route template, method and status",
    ["method", "route", "status"], buckets=_SECONDS)
ASSETS_INGESTED = Counter("mediaintel_assets_ingested_total", "Assets accepted for processing, by kind", ["kind"])

# --- pipeline (observed by the worker that runs the stage)
STAGE_RUNS = Counter(
    "mediaintel_stage_runs_total",
    "Stage attempts finished, by stage, queue and outcome (done, skipped, retrying, dead, lost, noop)",
    ["stage", "queue", "outcome"])
STAGE_SECONDS = Histogram(
    "mediaintel_stage_run_duration_seconds", "Run time of a claimed stage attempt, by stage and outcome",
    ["stage", "outcome"], buckets=_STAGE_SECONDS)
STAGE_QUEUE_WAIT = Histogram(
    "mediaintel_stage_queue_wait_seconds", "Time from dispatch (queued_at) to a worker claiming the stage",
    ["stage", "queue"], buckets=_WAIT_SECONDS)
STAGE_RUNNING = Gauge("mediaintel_stage_running", "Stages running now in live worker processes", ["stage"],
                      multiprocess_mode="livesum")

# --- engines (observed in the worker process that calls the model)
ENGINE_CALLS = Counter("mediaintel_engine_calls_total", "Engine calls by engine and outcome (ok, error)",
                       ["engine", "outcome"])
ENGINE_SECONDS = Histogram("mediaintel_engine_call_duration_seconds", "Engine call time", ["engine"],
                           buckets=_STAGE_SECONDS)
ENGINE_BATCH = Histogram("mediaintel_engine_batch_size", "Inputs per engine call (frames, texts, chunks)",
                         ["engine"], buckets=_BATCH)
ENGINE_LOAD_SECONDS = Histogram("mediaintel_engine_model_load_duration_seconds",
                                "Time to construct an engine (load its model) once per process", ["engine"],
                                buckets=_LOAD_SECONDS)
GPU_MEMORY = Gauge("mediaintel_engine_gpu_memory_bytes",
                   "CUDA memory allocated by torch in a worker process after its last engine call (only where "
                   "a GPU is in use)", ["engine", "device"], multiprocess_mode="liveall")


def multiproc_dir() -> str:
    """The shared directory of this process's metrics, or "" in single-process mode."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


_PID_FILE = re.compile(r"_(\d+)\.db$")

if multiproc_dir():  # a process that observes a metric must find the directory (an emptyDir, a tmpfs)
    # not creatable here (a migrate job without the volume): start anyway, only observing would fail
    with contextlib.suppress(OSError):
        Path(multiproc_dir()).mkdir(parents=True, exist_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def mark_process_dead(pid: int) -> None:
    """Drop the live-gauge files of ``pid`` (its counters and histograms stay, see the module doc)."""
    if multiproc_dir():
        multiprocess.mark_process_dead(pid)


def sweep_dead_pids() -> list[int]:
    """Remove live-gauge files of processes that no longer exist on this host; the pids swept."""
    d = multiproc_dir()
    if not d:
        return []
    dead: set[int] = set()
    for p in Path(d).glob("gauge_live*.db"):
        m = _PID_FILE.search(p.name)
        if m and not _alive(int(m.group(1))):
            dead.add(int(m.group(1)))
    for pid in dead:
        multiprocess.mark_process_dead(pid, d)
    return sorted(dead)


def clear_dir(path: str | os.PathLike[str]) -> None:
    """Empty (creating it if need be) a metrics directory before the processes that share it start."""
    p = Path(path)
    p.mkdir(parents=True, exist_ok=True)
    for f in p.glob("*.db"):
        f.unlink(missing_ok=True)


def forget_dead_processes() -> list[int]:
    """At a server's start: remove *every* file (counters too) of pids no longer alive, so a
    restarted container does not merge its predecessor's samples (or continue them under a reused
    pid); files of live processes sharing the directory stay. The pids forgotten."""
    d = multiproc_dir()
    if not d:
        return []
    Path(d).mkdir(parents=True, exist_ok=True)
    dead: set[int] = set()
    for p in Path(d).glob("*.db"):
        m = _PID_FILE.search(p.name)
        if m and not _alive(int(m.group(1))):
            dead.add(int(m.group(1)))
            p.unlink(missing_ok=True)
    return sorted(dead)


def exposition(*extra: object) -> bytes:
    """The text exposition of every process's metrics (merged from the shared directory in
    multiprocess mode, this process's otherwise) plus the ``extra`` collectors, gathered now."""
    registry = CollectorRegistry()
    if multiproc_dir():
        sweep_dead_pids()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())  # type: ignore[arg-type]
    for c in extra:
        registry.register(c)  # type: ignore[arg-type]
    return generate_latest(registry)


class _ThisProcess:
    """The default registry's metrics (this process's, with its process_* collector)."""

    def collect(self):  # type: ignore[no-untyped-def]
        return REGISTRY.collect()
