"""Request and task ids carried into every log record through context variables."""

from __future__ import annotations

import contextvars
import logging

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
task_id: contextvars.ContextVar[str] = contextvars.ContextVar("task_id", default="")


class ContextFilter(logging.Filter):
    """Adds ``request_id`` and ``task_id`` attributes (empty when unset)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = getattr(record, "request_id", "") or request_id.get()
        record.task_id = getattr(record, "task_id", "") or task_id.get()
        return True
