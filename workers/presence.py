"""Worker presence: the worker's main process says every few seconds which queues it consumes.

A row in ``WorkerPresence`` renewed every ``MEDIAINTEL_WORKER_PRESENCE_INTERVAL`` seconds (and
removed on a warm shutdown) lets the web side tell a queue that *holds messages nobody consumes*
from a busy one, on any broker, without a broadcast round trip to every worker.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from celery.signals import worker_ready, worker_shutdown
from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone

log = logging.getLogger("mediaintel.worker")

_stop = threading.Event()


def _renew(name: str, queues: list[str], started: Any) -> None:
    from apps.pipeline.models import WorkerPresence

    WorkerPresence.objects.update_or_create(name=name, defaults={
        "queues": queues, "pid": os.getpid(), "started_at": started, "seen_at": timezone.now()})


def _loop(name: str, queues: list[str]) -> None:
    started = timezone.now()
    try:
        while True:
            try:
                _renew(name, queues, started)
            except DatabaseError as e:  # the database is out: say so, reconnect next time
                log.warning("worker presence not renewed: %s", e)
                connection.close()
            if _stop.wait(settings.MEDIAINTEL_WORKER_PRESENCE_INTERVAL):
                return
    finally:
        connection.close()


@worker_ready.connect
def _start(sender: Any = None, **_: Any) -> None:
    queues = sorted(q.name for q in sender.task_consumer.queues) if sender and sender.task_consumer else []
    threading.Thread(target=_loop, args=(sender.hostname, queues), daemon=True, name="presence").start()


@worker_shutdown.connect
def _stop_presence(sender: Any = None, **_: Any) -> None:
    from apps.pipeline.models import WorkerPresence

    _stop.set()
    try:
        WorkerPresence.objects.filter(name=getattr(sender, "hostname", "")).delete()
    except DatabaseError:
        pass
    finally:
        connection.close()
