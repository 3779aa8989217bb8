"""Serializer fields whose accepted input is exactly what the OpenAPI document says."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers


def text_input(field: serializers.Field) -> bool:
    """Whether the serializer's input is text (a form or query string), not a JSON document."""
    return bool(field.context.get("text_input")) or type(getattr(field.root, "initial_data", None)) is not dict


class StrictBooleanField(serializers.BooleanField):
    """A boolean that takes ``true``/``false`` only.

    In a JSON body only the JSON literals ``true`` and ``false`` (DRF's own field also takes
    ``0``, ``1``, ``"yes"``, ``"on"`` …, which the schema's ``type: boolean`` refuses); in a form
    or query string, whose values are all text, the words ``true`` and ``false`` in any case.
    The input is text when the serializer's data is a ``QueryDict`` or its context says
    ``text_input`` (a view that flattened a query string into a dict).
    """

    default_error_messages = {"invalid": "Must be true or false."}

    def to_internal_value(self, data: Any) -> bool:
        if isinstance(data, bool):
            return data
        text = text_input(self)
        if text and self.allow_null and data in ("", "null"):  # a form's way of saying "no value"
            return None  # type: ignore[return-value]
        if isinstance(data, str) and text:
            word = data.strip().lower()
            if word in ("true", "false"):
                return word == "true"
        self.fail("invalid", input=data)


class StrictCharField(serializers.CharField):
    """A string that, in a JSON body, must be a JSON string (DRF's own field turns ``0`` into
    ``"0"``, which the schema's ``type: string`` refuses). Form and query values are text anyway."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str) and not text_input(self):
            self.fail("invalid")
        return super().to_internal_value(data)
