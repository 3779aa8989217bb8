"""Engine calls observed: a span, a count, a duration, the batch size and — where a GPU is in
use — the CUDA memory torch holds afterwards (mediacommon/metrics.py names them).

Stage code wraps each model call: ``with engine_call("detect.nudity", len(images)): ...``. The
engine label is the stage-side name of the model (bounded: one per engine kind). Model load time
is observed where engines are constructed (workers/engines/base.py ``cached_engine``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry.trace import Status, StatusCode

from mediacommon.metrics import ENGINE_BATCH, ENGINE_CALLS, ENGINE_SECONDS, GPU_MEMORY
from mediacommon.tracing import tracer


@contextmanager
def engine_call(engine: str, batch: int = 1, **attributes: str | int | float) -> Iterator[None]:
    """Observe one engine call (a child span of the stage's span)."""
    t0 = time.perf_counter()
    with tracer().start_as_current_span(f"engine {engine}", attributes={
            "mediaintel.engine": engine, "mediaintel.batch_size": batch, **attributes}) as span:
        try:
            yield
        except BaseException as e:
            ENGINE_CALLS.labels(engine, "error").inc()
            span.set_status(Status(StatusCode.ERROR, type(e).__name__))
            raise
        else:
            ENGINE_CALLS.labels(engine, "ok").inc()
        finally:
            ENGINE_SECONDS.labels(engine).observe(time.perf_counter() - t0)
            ENGINE_BATCH.labels(engine).observe(batch)
            _gpu_memory(engine)


def _gpu_memory(engine: str) -> None:
    """CUDA memory allocated by torch in this process, when torch is loaded and a GPU initialised
    (never imports torch or initialises CUDA itself)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return
    try:
        if not torch.cuda.is_initialized():
            return
        dev = torch.cuda.current_device()
        GPU_MEMORY.labels(engine, f"cuda:{dev}").set(torch.cuda.memory_allocated(dev))
    except Exception:  # noqa: S110  (a metric must never fail an engine call)
        pass
