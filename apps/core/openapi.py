"""Schema generation helpers for what drf-spectacular cannot infer from a view.

:func:`body_required` marks an action that cannot do anything without a request body, and
:class:`AutoSchema` (set as a view's ``schema``) then documents ``requestBody.required: true``.
drf-spectacular marks a body required only when its serializer has a required field, and never
when one of its media types is a plain string (a raw ``text/csv`` body, say) or a raw schema.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from drf_spectacular import openapi

F = TypeVar("F", bound=Callable[..., Any])


def body_required(func: F) -> F:
    """Mark a view method (or viewset action) whose request body is required."""
    func.body_required = True  # type: ignore[attr-defined]
    return func


class AutoSchema(openapi.AutoSchema):
    def _get_request_body(self, direction: str = "request") -> Any:
        body = super()._get_request_body(direction)
        handler = getattr(self.view, getattr(self.view, "action", None) or self.method.lower(), None)
        if body is not None and getattr(handler, "body_required", False):
            body["required"] = True
        return body
