"""Probes: ``/livez`` (the process answers) and ``/readyz`` (its dependencies answer).

Invariants:

- ``/livez`` performs no I/O at all: no database query, no broker or storage call. A liveness
  probe that fails because PostgreSQL is slow would have the orchestrator restart every web
  process at once, which cures nothing.
- ``/readyz`` checks each dependency in :data:`READINESS_CHECKS` and never writes anything
  (storage is checked with a stat / ``HeadBucket``, never a save): it runs every few seconds
  on every replica. 200 when every critical check passes, else 503 with ``failing`` naming the
  checks that did not; a failed non-critical check is listed in ``warnings`` (status
  ``degraded``, still 200); each check's result (with its latency) is in ``checks``. Feature
  apps register their checks from their ``AppConfig.ready()`` (core imports none of them).
- ``/healthz`` is the same view as ``/readyz`` (kept for existing monitors).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection
from django.http import HttpRequest, JsonResponse


@dataclass(frozen=True)
class Check:
    """One readiness check: ``run()`` returns ``{"ok": bool, ...details}`` or raises (a failure).

    A check that is not ``critical`` never makes the process unready: its failure is reported
    in ``warnings`` and the status is ``degraded`` (e.g. a queue nobody consumes is a problem
    for operators, not a reason to take the web tier out of service).
    """

    name: str
    run: Callable[[], dict[str, Any]]
    critical: bool = True


def _check_database() -> dict[str, Any]:
    with connection.cursor() as cur:
        cur.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        row = cur.fetchone()
    if not row:
        return {"ok": False, "error": "pgvector extension is not installed (run migrate)"}
    return {"ok": True, "pgvector": row[0]}


def _check_broker() -> dict[str, Any]:
    from kombu import Connection

    with Connection(settings.BROKER_URL, connect_timeout=2, transport_options={"max_retries": 0}) as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
        return {"ok": True, "transport": conn.transport_cls if isinstance(conn.transport_cls, str) else "ok"}


def _check_storage() -> dict[str, Any]:
    """Read-only: the S3 bucket answers ``HeadBucket``; a local media root is (or can be made) a
    readable, writable directory."""
    storage = default_storage
    bucket = getattr(storage, "bucket_name", None)
    if bucket is not None:  # S3Storage
        storage.connection.meta.client.head_bucket(Bucket=bucket)
        return {"ok": True, "backend": "s3", "bucket": bucket}
    root = Path(storage.location)
    usable = root  # a root not created yet is made by the first save: then its parent must be usable
    while not usable.exists() and usable.parent != usable:
        usable = usable.parent
    if not usable.is_dir():
        return {"ok": False, "backend": "local", "error": f"media root {root}: {usable} is not a directory"}
    if not os.access(usable, os.R_OK | os.W_OK | os.X_OK):
        return {"ok": False, "backend": "local", "error": f"media root {root}: {usable} is not readable and writable"}
    return {"ok": True, "backend": "local", "exists": usable == root}


#: What readiness checks, in order. Add a check by appending a :class:`Check` (its name becomes
#: the key in the response's ``checks`` and, when it fails, an entry of ``failing``).
READINESS_CHECKS: list[Check] = [
    Check("database", _check_database),
    Check("broker", _check_broker),
    Check("storage", _check_storage),
]


def livez(request: HttpRequest) -> JsonResponse:
    """200 while the process can answer a request; touches no dependency."""
    return JsonResponse({"status": "ok"})


def readyz(request: HttpRequest) -> JsonResponse:
    """200 when every readiness check passes, else 503; the body names what failed and why."""
    results: dict[str, Any] = {}
    for check in READINESS_CHECKS:
        t0 = time.perf_counter()
        try:
            results[check.name] = dict(check.run())
        except Exception as e:
            results[check.name] = {"ok": False, "error": f"{type(e).__name__}: {e}"}
        results[check.name]["ms"] = round((time.perf_counter() - t0) * 1000, 1)
    critical = {c.name for c in READINESS_CHECKS if c.critical}
    failing = [name for name, r in results.items() if not r["ok"] and name in critical]
    warnings = [name for name, r in results.items() if not r["ok"] and name not in critical]
    status = "unavailable" if failing else "degraded" if warnings else "ok"
    return JsonResponse({"status": status, "failing": failing, "warnings": warnings, "checks": results},
                        status=503 if failing else 200)


healthz = readyz
