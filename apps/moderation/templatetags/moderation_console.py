"""Template helpers for the console: roles, time codes, audit payload summaries."""

from __future__ import annotations

from typing import Any

from django import template

from apps.core.roles import has_role as _has_role

register = template.Library()


@register.filter
def has_role(user: Any, role: str) -> bool:
    """``{% if user|has_role:"moderator" %}`` (admins pass every role)."""
    return _has_role(user, role)


@register.filter
def timecode(seconds: Any) -> str:
    """Seconds as ``m:ss.s`` (``h:mm:ss`` past an hour); empty for None."""
    if seconds is None or seconds == "":
        return ""
    s = max(float(seconds), 0.0)
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    if h:
        return f"{int(h)}:{int(m):02d}:{int(sec):02d}"
    return f"{int(m)}:{sec:04.1f}"


@register.filter
def payload_summary(payload: Any, limit: int = 160) -> str:
    """A one-line ``key=value`` rendering of an audit payload."""
    if not isinstance(payload, dict):
        return str(payload)[:limit]
    parts = []
    for k, v in payload.items():
        if isinstance(v, list):
            v = ", ".join(map(str, v)) or "—"
        elif isinstance(v, dict):
            v = ", ".join(f"{a}={b}" for a, b in v.items())
        parts.append(f"{k}={v}")
    text = " · ".join(parts)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@register.filter
def get_item(mapping: Any, key: Any) -> Any:
    """``{{ counts|get_item:key }}``"""
    try:
        return mapping.get(key)
    except AttributeError:
        return None
