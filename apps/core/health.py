"""``/healthz``: database (with pgvector), broker and storage, each checked for real."""

from __future__ import annotations

import time
import uuid
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from django.http import HttpRequest, JsonResponse


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
    name = f"healthz/{uuid.uuid4().hex}"
    saved = default_storage.save(name, ContentFile(b"ok"))
    try:
        with default_storage.open(saved) as f:
            ok = f.read() == b"ok"
    finally:
        default_storage.delete(saved)
    return {"ok": ok, "backend": settings.MEDIAINTEL_STORAGE}


CHECKS = {"database": _check_database, "broker": _check_broker, "storage": _check_storage}


def healthz(request: HttpRequest) -> JsonResponse:
    """200 when every dependency answers, else 503; the body names what failed and why."""
    results: dict[str, Any] = {}
    for name, check in CHECKS.items():
        t0 = time.perf_counter()
        try:
            results[name] = check()
        except Exception as e:
            results[name] = {"ok": False, "error": f"{type(e).__name__}: {e}"}
        results[name]["ms"] = round((time.perf_counter() - t0) * 1000, 1)
    ok = all(r["ok"] for r in results.values())
    return JsonResponse({"status": "ok" if ok else "unavailable", "checks": results}, status=200 if ok else 503)
