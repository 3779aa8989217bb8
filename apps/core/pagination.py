"""The API's pagination: limit/offset with a maximum page size.

Invariants:

- ``?limit=`` is an integer from 1 to ``MEDIAINTEL_API_MAX_LIMIT`` (default ``PAGE_SIZE``);
  ``?offset=`` an integer from 0. Anything else — a limit above the maximum, zero, negative or
  not a number — is refused with ``400 invalid`` in the error envelope, ``detail`` naming the
  parameter and the allowed range, never clamped or silently replaced by the default. (Search
  pages refuse a ``limit`` over their own maximum the same way.)
- The schema states the same bounds (``minimum``/``maximum``) that the server enforces.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import pagination
from rest_framework.request import Request

from apps.core.errors import ApiError


def _int_param(request: Request, name: str, default: int, lo: int, hi: int | None) -> int:
    values = request.query_params.getlist(name)
    if not values:
        return default
    bounds = f"from {lo} to {hi}" if hi is not None else f"{lo} or more"
    raw = values[0].strip()
    value = int(raw) if len(values) == 1 and raw.isascii() and raw.isdigit() else None
    if value is None or value < lo or (hi is not None and value > hi):
        got = "it given more than once" if len(values) > 1 else repr(values[0][:40])
        raise ApiError(f"{name} must be an integer {bounds}, given once.", code="invalid",
                       detail={name: [f"an integer {bounds}; got {got}"]})
    return value


class LimitOffsetPagination(pagination.LimitOffsetPagination):
    limit_query_description = "Items per page."
    offset_query_description = "How many items to skip."

    @property
    def max_limit(self) -> int:  # type: ignore[override]
        return int(settings.MEDIAINTEL_API_MAX_LIMIT)

    def get_limit(self, request: Request) -> int:
        return _int_param(request, self.limit_query_param, min(self.default_limit, self.max_limit), 1, self.max_limit)

    def get_offset(self, request: Request) -> int:
        return _int_param(request, self.offset_query_param, 0, 0, None)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return [
            {"name": self.limit_query_param, "required": False, "in": "query",
             "description": f"{self.limit_query_description} At most `MEDIAINTEL_API_MAX_LIMIT` "
                            f"({self.max_limit}); more is refused (400).",
             "schema": {"type": "integer", "minimum": 1, "maximum": self.max_limit, "default": self.default_limit}},
            {"name": self.offset_query_param, "required": False, "in": "query",
             "description": self.offset_query_description,
             "schema": {"type": "integer", "minimum": 0, "default": 0}},
        ]
