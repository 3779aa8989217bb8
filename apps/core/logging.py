"""Request, task and trace ids carried into every log record through context variables."""

from __future__ import annotations

import contextvars
import logging

from mediacommon.tracing import current_ids

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
task_id: contextvars.ContextVar[str] = contextvars.ContextVar("task_id", default="")


class ContextFilter(logging.Filter):
    """Adds ``request_id``, ``task_id``, ``trace_id`` and ``span_id`` attributes (empty when unset;
    the trace ids are those of the current OpenTelemetry span, so a log line can be found from its
    trace and the other way round) and ``trace_suffix`` (`` trace=<id>`` or "") for text logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = getattr(record, "request_id", "") or request_id.get()
        record.task_id = getattr(record, "task_id", "") or task_id.get()
        trace_id, span_id = current_ids()
        record.trace_id = getattr(record, "trace_id", "") or trace_id
        record.span_id = getattr(record, "span_id", "") or span_id
        record.trace_suffix = f" trace={record.trace_id}" if record.trace_id else ""
        return True
