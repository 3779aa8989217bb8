"""The API's pagination: limit/offset with a maximum page size.

``?limit=`` above ``MEDIAINTEL_API_MAX_LIMIT`` is clamped to it (not refused), so a client that
asks for "everything" gets full pages and follows ``next``.
"""

from __future__ import annotations

from django.conf import settings
from rest_framework import pagination


class LimitOffsetPagination(pagination.LimitOffsetPagination):
    @property
    def max_limit(self) -> int:  # type: ignore[override]
        return int(settings.MEDIAINTEL_API_MAX_LIMIT)
