"""The one timestamp format the API, webhooks and events emit: RFC 3339 in UTC with ``Z``.

Invariant: ``rfc3339(dt)`` is ``YYYY-MM-DDTHH:MM:SS[.ffffff]Z`` for any aware datetime, whatever its
zone (converted to UTC first) — the same form DRF's serializers and JSON encoder write for the
project's ``TIME_ZONE = "UTC"``, so hand-built bodies (event envelopes, webhook bodies) match them.
"""

from __future__ import annotations

from datetime import UTC, datetime


def rfc3339(dt: datetime) -> str:
    if dt.tzinfo is None:
        raise ValueError("a naive datetime has no defined instant")
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")
