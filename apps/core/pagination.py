"""The API's pagination: limit/offset with a maximum page size.

Invariants:

* ``?limit=`` is an integer ≥ 1 and ``?offset=`` an integer ≥ 0; anything else (``null``,
  ``-1``, ``1.5``, ``ten``, or the parameter given twice) is a 400 naming the parameter, never
  silently the default page.
* ``?limit=`` above ``MEDIAINTEL_API_MAX_LIMIT`` is clamped to it (not refused), so a client that
  asks for "everything" gets full pages and follows ``next``.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import pagination
from rest_framework.request import Request

from apps.core.errors import ApiError


def _bounded_int(request: Request, name: str, minimum: int) -> int | None:
    values = request.query_params.getlist(name)
    if not values:
        return None
    problem = None
    if len(values) > 1:
        problem = "give it once"
    elif not values[0].isascii() or not values[0].isdigit() or int(values[0]) < minimum:
        problem = f"an integer ≥ {minimum}"
    if problem:
        raise ApiError("The request is invalid.", code="invalid", detail={name: [f"{name} must be {problem}"]})
    return int(values[0])


class LimitOffsetPagination(pagination.LimitOffsetPagination):
    @property
    def max_limit(self) -> int:  # type: ignore[override]
        return int(settings.MEDIAINTEL_API_MAX_LIMIT)

    def get_limit(self, request: Request) -> int:
        limit = _bounded_int(request, self.limit_query_param, 1)
        return self.default_limit if limit is None else min(limit, self.max_limit)

    def get_offset(self, request: Request) -> int:
        return _bounded_int(request, self.offset_query_param, 0) or 0

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        params = super().get_schema_operation_parameters(view)
        for p in params:
            if p["name"] == self.limit_query_param:
                p["schema"].update(minimum=1)
                p["description"] += f" At most {self.max_limit}; a larger value is clamped."
            elif p["name"] == self.offset_query_param:
                p["schema"].update(minimum=0)
        return params
