"""``python -m workers --role cpu|gpu|all|search [--concurrency N]``: start a Celery worker of a role."""

from __future__ import annotations

import argparse
import os
import socket
import sys


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mediaintel.settings")
    ap = argparse.ArgumentParser(prog="python -m workers", description=__doc__)
    ap.add_argument("--role", default=os.environ.get("MEDIAINTEL_WORKER_ROLE", "all"),
                    choices=["cpu", "gpu", "all", "search"])
    ap.add_argument("--concurrency", "-c", type=int, default=int(os.environ.get("MEDIAINTEL_WORKER_CONCURRENCY", 0)))
    ap.add_argument("--pool", default=os.environ.get("MEDIAINTEL_WORKER_POOL", "prefork"))
    ap.add_argument("--loglevel", default="INFO")
    ap.add_argument("--name", default="")
    a, extra = ap.parse_known_args(argv)

    import django

    django.setup()
    from django.conf import settings

    from mediaintel.celery import app
    from workers.routing import queues_for_role

    if a.role == "gpu":
        os.environ.setdefault("MEDIAINTEL_DEVICE", "cuda")
    if a.role == "search":  # interactive: the first query must not wait for a model to load
        os.environ.setdefault("MEDIAINTEL_PRELOAD", "text_embed")
    queues = queues_for_role(a.role, gpu_workers=settings.MEDIAINTEL_GPU_WORKERS)
    args = ["worker", "-Q", ",".join(queues), "-l", a.loglevel, "-P", a.pool,
            "-n", a.name or f"{a.role}@{socket.gethostname()}", "--without-mingle", "--without-gossip", *extra]
    concurrency = a.concurrency or (os.cpu_count() or 1)
    args += ["-c", str(concurrency)]
    os.environ.setdefault("MEDIAINTEL_THREADS_PER_CHILD", str(max(1, (os.cpu_count() or 1) // concurrency)))
    app.worker_main(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
