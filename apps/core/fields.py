"""Serializer fields whose accepted input is exactly what the OpenAPI document says."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from mediacommon.text import contains_nul


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


def refuse_nul(value: Any) -> None:
    """Raise a ValidationError when a JSON value holds U+0000 in any string or key (see
    :mod:`mediacommon.text`): a 400 instead of a failure to save."""
    if contains_nul(value):
        raise serializers.ValidationError("text may not contain NUL (U+0000) characters")


class StoredJSONField(serializers.JSONField):
    """A JSON value the server stores: refused (400) when it holds NUL, see :func:`refuse_nul`."""

    def to_internal_value(self, data: Any) -> Any:
        value = super().to_internal_value(data)
        refuse_nul(value)
        return value


class FormBooleanField(StrictBooleanField):
    """A form's optional boolean: ``true`` or ``false``; left out, it has no value (absent from
    ``validated_data``). A form has no null, so the text ``null`` is refused like any other word,
    as the schema's non-nullable ``type: boolean`` says (DRF would read a missing form boolean as
    ``false``)."""

    default_empty_html = serializers.empty

    def __init__(self, **kw: Any) -> None:
        super().__init__(required=False, allow_null=False, **kw)


class StrictCharField(serializers.CharField):
    """A string that, in a JSON body, must be a JSON string (DRF's own field turns ``0`` into
    ``"0"``, which the schema's ``type: string`` refuses). Form and query values are text anyway."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str) and not text_input(self):
            self.fail("invalid")
        return super().to_internal_value(data)
