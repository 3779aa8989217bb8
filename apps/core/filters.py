"""Query-string filters shared by the API's lists."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import django_filters as df
from django import forms
from django.core.validators import ProhibitNullCharactersValidator
from django.db import models
from django_filters.fields import IsoDateTimeField
from django_filters.rest_framework import DjangoFilterBackend, FilterSet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field


class TimestampField(IsoDateTimeField):
    """An RFC 3339 timestamp with any UTC offset (up to ±23:59), compared in UTC.

    PostgreSQL refuses offsets of ±16:00 and more in a query parameter (a DataError mid-query), so
    the value is converted to UTC here and the database never sees the offset. A timestamp that
    leaves the representable range when converted (year 1 with a positive offset, year 9999 with a
    negative one) is clamped to the range's end: no stored row lies beyond it.
    """

    def to_python(self, value: Any) -> datetime | None:
        dt = super().to_python(value)
        if dt is None or dt.utcoffset() is None:
            return dt
        try:
            return dt.astimezone(UTC)
        except OverflowError:
            return datetime.min.replace(tzinfo=UTC) if dt.year == 1 else datetime.max.replace(tzinfo=UTC)


class TimestampFilter(df.IsoDateTimeFilter):
    field_class = TimestampField


@extend_schema_field(OpenApiTypes.BOOL)
class BoolFilter(df.BooleanFilter):
    """A boolean filter documented as one even when it filters through a ``method`` (whose type
    the schema generator cannot read)."""


class IdFilter(df.Filter):
    """An integer id (``1.5`` or ``x`` is a 400; a well-formed id that names nothing filters to nothing)."""

    field_class = forms.IntegerField


@extend_schema_field(OpenApiTypes.INT)
class IntegerFilter(df.Filter):
    """A whole number (``0.5`` or ``x`` is a 400), for integer columns such as a severity."""

    field_class = forms.IntegerField


class TextField(forms.CharField):
    """Text as the schema states it (any string): NUL characters are not refused here; the filter
    set answers a value holding one with nothing (see :class:`ReferenceLookups`)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.validators = [v for v in self.validators if not isinstance(v, ProhibitNullCharactersValidator)]


class ReferenceLookups:
    """FilterSet mixin: each filter takes exactly the values its documented type allows.

    * A filter on a foreign key takes the key's *form* (a UUID, an integer), not an existing
      row. django-filter's default (a model choice) answers a well-formed id that names no row
      with a 400 "select a valid choice"; a filter that matches nothing is an empty page.
    * A typed filter (id, UUID, timestamp, choice, boolean, number) given an empty value is a
      400 naming it (django-filter would ignore it); only a text filter may be empty.
    * A filter on an integer column takes a whole number (django-filter's would take ``0.5``).
    * A boolean filter takes ``true`` or ``false`` (any case); django-filter would read anything
      else (``null``, ``maybe``) as "no filter".
    * A text filter takes any string, NUL characters included. No stored text holds one
      (PostgreSQL refuses them), so a value with one matches nothing: the list is empty.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[call-arg]
        for f in self.filters.values():  # type: ignore[attr-defined]  # per-instance copies
            if isinstance(f, df.CharFilter) and f.field_class is forms.CharField:
                f.field_class = TextField

    def filter_queryset(self, queryset: Any) -> Any:
        for name, value in self.form.cleaned_data.items():  # type: ignore[attr-defined]
            if isinstance(self.filters.get(name), df.CharFilter) and "\x00" in str(value or ""):  # type: ignore[attr-defined]
                return queryset.none()
        return super().filter_queryset(queryset)  # type: ignore[misc]

    def is_valid(self) -> bool:
        valid = super().is_valid()  # type: ignore[misc]
        data = self.data  # type: ignore[attr-defined]
        for name, f in self.filters.items():  # type: ignore[attr-defined]
            if name not in data:
                continue
            values = data.getlist(name) if hasattr(data, "getlist") else [data[name]]
            if isinstance(f, df.BooleanFilter) and any(str(v).lower() not in ("true", "false") for v in values):
                problem = "must be true or false"
            elif not isinstance(f, df.CharFilter) and any(v == "" for v in values):
                problem = "must not be empty"
            else:
                continue
            self.form.add_error(name, problem)  # type: ignore[attr-defined]
            valid = False
        return valid

    @classmethod
    def filter_for_lookup(cls, field: Any, lookup_type: str) -> tuple[Any, dict[str, Any]]:
        if field.is_relation and (field.many_to_one or field.one_to_one) and lookup_type == "exact":
            target = field.target_field
            if isinstance(target, models.UUIDField):
                return df.UUIDFilter, {}
            if isinstance(target, models.IntegerField):  # AutoField and BigAutoField are IntegerFields
                return IdFilter, {}
        if not field.is_relation and isinstance(field, models.IntegerField) and lookup_type == "exact":
            return IntegerFilter, {}  # django-filter's NumberFilter would take a decimal
        return super().filter_for_lookup(field, lookup_type)  # type: ignore[misc]


class ApiFilterSet(ReferenceLookups, FilterSet):
    """The base of the filters built from a view's ``filterset_fields``."""


class ApiFilterBackend(DjangoFilterBackend):
    """``DjangoFilterBackend`` whose filter sets, declared or built, take references by form
    (:class:`ReferenceLookups`). A view's own ``filterset_class`` is extended, not replaced: its
    declared filters stay as they are."""

    filterset_base = ApiFilterSet
    _extended: dict[type, type] = {}

    def get_filterset_class(self, view: Any, queryset: Any = None) -> Any:
        cls = super().get_filterset_class(view, queryset)
        if cls is None or issubclass(cls, ReferenceLookups):
            return cls
        if cls not in self._extended:
            self._extended[cls] = type(cls.__name__, (ReferenceLookups, cls), {"__module__": cls.__module__})
        return self._extended[cls]
