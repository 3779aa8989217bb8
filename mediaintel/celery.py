"""The Celery app. Its configuration lives in settings (``CELERY_*``), built from workers/routing.py.

The web process only *sends* tasks, by explicit name (``send_task``), so it never imports a
task module or a model engine. Workers import the task modules listed in ``CELERY_IMPORTS``.
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mediaintel.settings")

app = Celery("mediaintel")
app.config_from_object("django.conf:settings", namespace="CELERY")
