"""``?ordering=`` for the API's lists: an explicit allow-list per view, a stable default, a unique tie-breaker.

Invariants:

- A list view declares ``ordering_fields`` (the names a client may order by; never ``"__all__"``)
  and ``ordering`` (its default, a tuple of those names, ``-`` for descending).
- ``?ordering=a,-b`` orders by the named fields in turn; any name outside the allow-list makes the
  request a ``400 invalid`` in the error envelope with ``detail.ordering`` naming the unknown
  values and listing the allowed ones — never silently ignored.
- Every ordering ends with the primary key (ascending or descending like the first key), so rows
  that tie on the requested fields keep one order from page to page and ``limit``/``offset``
  pages neither repeat nor skip a row.
- Only the ``list`` action is ordered and checked: a detail route ignores the parameter.
- The schema documents the parameter as a comma-separated array whose items are the allowed
  values (each field and its ``-`` form), with the default in the description.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db.models import QuerySet
from rest_framework import filters
from rest_framework.request import Request

from apps.core.errors import ApiError

TIE_BREAKER = "pk"


def _allowed(view: Any) -> list[str]:
    fields = getattr(view, "ordering_fields", None)
    if not fields or isinstance(fields, str):
        raise TypeError(f"{type(view).__name__} must declare ordering_fields as a list of names")
    return list(fields)


def _default(view: Any) -> list[str]:
    default = getattr(view, "ordering", None)
    if not default:
        raise TypeError(f"{type(view).__name__} must declare a default ordering")
    return [default] if isinstance(default, str) else list(default)


def with_tie_breaker(ordering: Sequence[str]) -> list[str]:
    """``ordering`` followed by the primary key in the direction of its first key (unless present)."""
    keys = list(ordering)
    if any(k.lstrip("-") in (TIE_BREAKER, "id") for k in keys):
        return keys
    descending = bool(keys) and keys[0].startswith("-")
    return [*keys, f"-{TIE_BREAKER}" if descending else TIE_BREAKER]


class OrderingFilter(filters.OrderingFilter):
    """The project's ordering backend (``REST_FRAMEWORK["DEFAULT_FILTER_BACKENDS"]``)."""

    ordering_description = "Comma-separated fields to order by; `-` before a field for descending."

    @staticmethod
    def _applies(view: Any) -> bool:
        return getattr(view, "action", "list") == "list" and getattr(view, "ordering_fields", None) is not None

    def requested(self, request: Request, view: Any) -> list[str]:
        """The ordering asked for (validated against the view's allow-list), or the view's default."""
        keys = [k.strip() for k in (request.query_params.get(self.ordering_param) or "").split(",") if k.strip()]
        if not keys:
            return _default(view)
        allowed = _allowed(view)
        unknown = [k for k in keys if k.lstrip("-") not in allowed or k.startswith("--")]
        if unknown:
            raise ApiError(f"Cannot order by {', '.join(unknown)}.", code="invalid",
                           detail={self.ordering_param: [f"unknown field(s): {', '.join(unknown)}; allowed: "
                                                         f"{', '.join(allowed)} (prefix - for descending)"]})
        return keys

    def filter_queryset(self, request: Request, queryset: QuerySet[Any], view: Any) -> QuerySet[Any]:
        if not self._applies(view):
            return queryset
        return queryset.order_by(*with_tie_breaker(self.requested(request, view)))

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        if not self._applies(view):
            return []
        allowed = _allowed(view)
        default = ",".join(_default(view))
        return [{
            "name": self.ordering_param,
            "required": False,
            "in": "query",
            "description": f"{self.ordering_description} Default: `{default}`. Unknown fields are refused "
                           "(400). Rows that tie are ordered by id.",
            "style": "form",
            "explode": False,
            "schema": {"type": "array", "items": {"type": "string",
                                                  "enum": [v for f in allowed for v in (f, f"-{f}")]}},
        }]
