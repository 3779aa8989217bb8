"""Transactions that PostgreSQL may abort for concurrency, retried.

A deadlock (SQLSTATE ``40P01``) or a serialization failure (``40001``) aborts one of the
transactions involved; the other proceeds. Nothing of the aborted one is kept, so running it
again is safe and is what PostgreSQL's documentation prescribes. :func:`retry_transaction` does
that for an action that owns its transaction (``fn`` opens it), a few times, then lets the error
through.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from django.db import OperationalError

T = TypeVar("T")
RETRYABLE = {"40P01", "40001"}  # deadlock_detected, serialization_failure
log = logging.getLogger("mediaintel.db")


def retryable(error: BaseException) -> bool:
    return getattr(error.__cause__, "sqlstate", None) in RETRYABLE


def retry_transaction(fn: Callable[[], T], *, attempts: int = 3) -> T:
    """``fn()``, run again when PostgreSQL aborted its transaction for concurrency."""
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except OperationalError as e:
            if not retryable(e) or attempt == attempts:
                raise
            log.warning("transaction aborted for concurrency (%s), attempt %d of %d: retrying",
                        getattr(e.__cause__, "sqlstate", ""), attempt, attempts)
    raise AssertionError("unreachable")
