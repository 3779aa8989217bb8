"""Engine contract shared by every model adapter.

Engines are pure: no Django imports. Each declares a stable ``name`` and a
``version`` that changes whenever weights or parameters change (the pipeline
keys results by ``(asset, stage, engine version)``). Heavy models load lazily,
once per process, through :func:`cached_engine`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

# The error contract is shared with the web tier's probe: the same classes, re-exported.
from mediacommon.errors import EngineError as EngineError
from mediacommon.errors import PermanentEngineError as PermanentEngineError
from mediacommon.errors import TransientEngineError as TransientEngineError
from mediacommon.metrics import ENGINE_LOAD_SECONDS

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

    ImageInput = Image.Image | np.ndarray

T = TypeVar("T")


class EngineUnavailable(PermanentEngineError):
    """The engine is not configured here (no weights); the stage is skipped, not failed."""


@dataclass(frozen=True)
class EngineInfo:
    """Identity of an engine run: what produced a result."""

    name: str
    version: str
    device: str = "cpu"
    params: dict[str, Any] = field(default_factory=dict)


@contextlib.contextmanager
def inference_errors(what: str = "inference") -> Iterator[None]:
    """Map running out of memory (CUDA or host) during ``what`` to a retryable engine error.
    Imports nothing: torch's CUDA out-of-memory error is caught only where torch is already loaded."""
    torch = sys.modules.get("torch")
    oom: tuple[type[BaseException], ...] = (MemoryError,)
    if torch is not None:
        oom += (torch.cuda.OutOfMemoryError,)
    try:
        yield
    except oom as exc:
        raise TransientEngineError(f"out of memory during {what}: {exc}") from exc


def pick_device() -> str:
    """The device asked for when a caller passes none: ``MEDIAINTEL_DEVICE`` (``auto``/``cpu``/``cuda``), else ``auto``.

    A request, not a decision: engines turn it into the device they use with
    :func:`workers.engines.device.resolve_device` (CPU, with one warning, when CUDA is unusable).
    The task layer passes ``settings.MEDIAINTEL_DEVICE`` explicitly; this default serves benches and
    direct use.
    """
    return os.environ.get("MEDIAINTEL_DEVICE", "auto").strip().lower() or "auto"


def weights_fingerprint(path: str | os.PathLike[str], *, chunk: int = 1 << 20) -> str:
    """Short content fingerprint of a weights file (first+last MiB and size), for versions.

    Memoised per (path, mtime, size): engines call it when building their version string.
    """
    p = Path(path)
    st = p.stat()
    return _fingerprint(str(p), st.st_mtime_ns, st.st_size, chunk)


@functools.lru_cache(maxsize=64)
def _fingerprint(path: str, mtime_ns: int, size: int, chunk: int) -> str:
    h = hashlib.sha256()
    h.update(str(size).encode())
    with open(path, "rb") as f:
        h.update(f.read(chunk))
        if size > chunk:
            f.seek(max(size - chunk, chunk))
            h.update(f.read(chunk))
    return h.hexdigest()[:12]


def model_cache_dir() -> Path:
    """``$MEDIAINTEL_MODEL_CACHE`` or ``~/.cache/mediaintel/models``, created on demand."""
    path = Path(os.environ.get("MEDIAINTEL_MODEL_CACHE") or "~/.cache/mediaintel/models").expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PermanentEngineError(f"cannot create the model cache {path}: {exc}") from exc
    return path


_lock = threading.Lock()


def cached_engine(factory: Callable[..., T]) -> Callable[..., T]:
    """Memoise an engine constructor per process and per argument tuple (thread-safe); the time
    each construction (a model load) takes is observed as ``mediaintel_engine_model_load_duration_seconds``
    labelled ``<module>.<factory>`` (e.g. ``detect._load``)."""
    cache: dict[tuple[Any, ...], T] = {}
    label = f"{factory.__module__.rsplit('.', 1)[-1]}.{factory.__name__}"

    @functools.wraps(factory)
    def get(*args: Any, **kwargs: Any) -> T:
        key = (args, tuple(sorted(kwargs.items())))
        if key in cache:
            return cache[key]
        with _lock:
            if key not in cache:
                t0 = time.perf_counter()
                cache[key] = factory(*args, **kwargs)
                ENGINE_LOAD_SECONDS.labels(label).observe(time.perf_counter() - t0)
        return cache[key]

    get.cache_clear = cache.clear  # type: ignore[attr-defined]
    return get


def cpu_threads() -> int:
    """CPU threads this process's engines may use: ``OMP_NUM_THREADS`` (a worker child's share, set
    before any model library loads, see workers/process.py), else the cores this process may run on."""
    with contextlib.suppress(ValueError):
        if (n := int(os.environ.get("OMP_NUM_THREADS") or 0)) > 0:
            return n
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


_pools: dict[int, Any] = {}  # pid → ThreadPoolExecutor: a pool's threads do not survive a fork
_pools_lock = threading.Lock()


def parallel_map(fn: Callable[[Any], T], items: Sequence[Any]) -> list[T]:
    """``[fn(x) for x in items]``, in order, on up to :func:`cpu_threads` threads of one pool per
    process (made in the process that first needs it, so never inherited across a fork); in the
    calling thread when one thread is allowed or there is one item. For work that releases the GIL
    (image resizing, decoding)."""
    threads = min(cpu_threads(), len(items))
    if threads <= 1:
        return [fn(x) for x in items]
    from concurrent.futures import ThreadPoolExecutor

    pid = os.getpid()
    with _pools_lock:
        pool = _pools.get(pid)
        if pool is None:
            _pools.clear()
            pool = _pools[pid] = ThreadPoolExecutor(max_workers=cpu_threads(), thread_name_prefix="engine-cpu")
    return list(pool.map(fn, items))


def engine_version(weights_id: str, **params: Any) -> str:
    """``weights_id`` plus a short digest of the parameters that change results.

    Same weights and parameters give the same string on every host; changing either changes it.
    """
    if not params:
        return weights_id
    blob = json.dumps(params, sort_keys=True, default=str)
    return f"{weights_id}+{hashlib.sha256(blob.encode()).hexdigest()[:8]}"


def to_rgb_array(image: ImageInput) -> np.ndarray:
    """A PIL image or a uint8 array (HxW, HxWx1/3/4, RGB order) as a C-contiguous uint8 HxWx3 RGB array.

    Raises :class:`PermanentEngineError` for anything else (wrong dtype/shape, empty image).
    """
    import numpy as np  # lazy: base stays importable without numpy/Pillow
    from PIL import Image

    if isinstance(image, Image.Image):
        arr = np.asarray(image if image.mode == "RGB" else image.convert("RGB"))
    elif isinstance(image, np.ndarray):
        if image.dtype != np.uint8:
            raise PermanentEngineError(f"expected a uint8 image array, got {image.dtype}")
        arr = image
        if arr.ndim == 3 and arr.shape[2] == 1:
            arr = arr[:, :, 0]
        if arr.ndim == 2:
            arr = np.repeat(arr[:, :, None], 3, axis=2)
        elif arr.ndim == 3 and arr.shape[2] == 4:
            arr = arr[:, :, :3]
        elif not (arr.ndim == 3 and arr.shape[2] == 3):
            raise PermanentEngineError(f"expected an HxW, HxWx3 or HxWx4 image array, got shape {arr.shape}")
    else:
        raise PermanentEngineError(f"expected a PIL image or numpy array, got {type(image).__name__}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise PermanentEngineError(f"empty image {arr.shape[:2]}")
    return np.ascontiguousarray(arr)
