"""``python -m workers --role cpu|gpu|all|search [--concurrency N] [--gpu INDEX]``: start a Celery worker of a role.

``--gpu INDEX`` runs the worker on that one GPU (``CUDA_VISIBLE_DEVICES``, set before any CUDA
library is loaded, so its children see exactly one device) with one pool child unless
``--concurrency`` says otherwise: run one such worker per GPU of the host.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import sys

GPU_ROLES = ("gpu", "search", "all")
_GPU_ID = re.compile(r"^(\d+|(GPU|MIG)-[0-9A-Za-z-]+)$")  # an index or a device UUID, as CUDA_VISIBLE_DEVICES takes


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mediaintel.settings")
    ap = argparse.ArgumentParser(prog="python -m workers", description=__doc__)
    ap.add_argument("--role", default=os.environ.get("MEDIAINTEL_WORKER_ROLE", "all"),
                    choices=["cpu", "gpu", "all", "search"])
    ap.add_argument("--concurrency", "-c", type=int, default=int(os.environ.get("MEDIAINTEL_WORKER_CONCURRENCY", 0)))
    ap.add_argument("--pool", default=os.environ.get("MEDIAINTEL_WORKER_POOL", "prefork"))
    ap.add_argument("--loglevel", default="INFO")
    ap.add_argument("--name", default="")
    ap.add_argument("--gpu", default=None, metavar="INDEX",
                    help="use only this GPU (index or UUID; sets CUDA_VISIBLE_DEVICES): one worker per GPU")
    a, extra = ap.parse_known_args(argv)
    if a.gpu is not None:
        if a.role not in GPU_ROLES:
            ap.error(f"--gpu needs a role that runs models on the GPU ({', '.join(GPU_ROLES)}), not {a.role!r}")
        if not _GPU_ID.match(a.gpu):
            ap.error(f"--gpu takes one device index (0, 1, ...) or UUID (GPU-...), not {a.gpu!r}")
        os.environ["CUDA_VISIBLE_DEVICES"] = a.gpu  # before torch/ctranslate2 load in any child
        os.environ.setdefault("MEDIAINTEL_DEVICE", "cuda")
        a.concurrency = a.concurrency or 1

    if a.role == "gpu":  # before settings load: settings.MEDIAINTEL_DEVICE reaches the engines
        os.environ.setdefault("MEDIAINTEL_DEVICE", "cuda")

    import django

    django.setup()
    from django.conf import settings

    from mediaintel.celery import app
    from workers.metrics_server import serve_metrics
    from workers.routing import queues_for_role

    if a.role == "search":  # interactive: the first query must not wait for a model to load
        os.environ.setdefault("MEDIAINTEL_PRELOAD", "text_embed")
    queues = queues_for_role(a.role, gpu_workers=settings.MEDIAINTEL_GPU_WORKERS)
    name = a.name or f"{a.role}{'' if a.gpu is None else '-gpu' + a.gpu}@{socket.gethostname()}"
    args = ["worker", "-Q", ",".join(queues), "-l", a.loglevel, "-P", a.pool,
            "-n", name, "--without-mingle", "--without-gossip", *extra]
    concurrency = a.concurrency or (os.cpu_count() or 1)
    args += ["-c", str(concurrency)]
    os.environ.setdefault("MEDIAINTEL_THREADS_PER_CHILD", str(max(1, (os.cpu_count() or 1) // concurrency)))
    if settings.MEDIAINTEL_WORKER_METRICS_PORT:
        serve_metrics(settings.MEDIAINTEL_WORKER_METRICS_PORT)
    os.environ["MEDIAINTEL_WORKER_ROLE"] = a.role  # MEDIAINTEL_PRELOAD=role in the children
    from workers.process import preload_shared

    preload_shared(a.role)  # before the fork: the children share these models' pages
    app.worker_main(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
