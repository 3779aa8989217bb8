"""The Celery app. Its configuration lives in settings (``CELERY_*``), built from mediacommon/routing.py.

The web process only *sends* tasks, by explicit name (``send_task``), so it never imports a
task module or a model engine. Workers import the task modules listed in ``CELERY_IMPORTS``.
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mediaintel.settings")

app = Celery("mediaintel")
app.config_from_object("django.conf:settings", namespace="CELERY")


def _harden_redis_transport() -> None:
    """Make a closed kombu Redis channel fail with a *connection* error, not AttributeError.

    kombu 5.7: when Redis goes away while a task runs, the consumer closes its connection
    (``transport.client`` becomes None) and a later ack or channel close rebuilds a pool from
    it, raising ``AttributeError`` — which Celery treats as unrecoverable and the worker
    exits. Raised as ``redis.ConnectionError`` it is handled like any broker outage: the
    worker reconnects and the unacknowledged message is restored.
    """
    import redis
    from kombu.transport import redis as kombu_redis

    original = kombu_redis.Channel._connparams
    if getattr(original, "_mediaintel", False):
        return

    def _connparams(self, asynchronous=False):  # type: ignore[no-untyped-def]
        if self.connection is None or self.connection.client is None:
            raise redis.ConnectionError("the broker connection is closed")
        return original(self, asynchronous=asynchronous)

    _connparams._mediaintel = True  # type: ignore[attr-defined]
    kombu_redis.Channel._connparams = _connparams


_harden_redis_transport()
