"""gunicorn hooks (``gunicorn -c python:mediaintel.gunicorn_conf``): Prometheus multiprocess cleanup.

Every gunicorn worker writes its metrics to ``PROMETHEUS_MULTIPROC_DIR`` (mediacommon/metrics.py).
When the arbiter starts it forgets the files of pids that are gone (a restarted container's
predecessors; live processes sharing the directory, like ``make run``'s workers, keep theirs);
when a worker exits its live-gauge files go.
"""

from __future__ import annotations

from typing import Any


def on_starting(server: Any) -> None:
    from mediacommon.metrics import forget_dead_processes

    forget_dead_processes()


def child_exit(server: Any, worker: Any) -> None:
    from mediacommon.metrics import mark_process_dead

    mark_process_dead(worker.pid)
