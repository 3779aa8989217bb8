"""System checks (``manage.py check``, and at every management command's start)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Warning, register


@register("mediaintel")
def search_redis_configured(app_configs: Any, **kwargs: Any) -> list[Warning]:
    """Semantic search needs a Redis: ``REDIS_URL``, or the broker when it is Redis."""
    if settings.REDIS_URL:
        return []
    return [Warning("REDIS_URL is not set and the broker is not Redis: semantic search will answer with "
                    "full-text results only (degraded).",
                    hint="Set REDIS_URL to a Redis that the web and the workers both reach.", id="search.W001")]
