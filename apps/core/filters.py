"""Query-string filters shared by the API's lists."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import django_filters as df
from django.core.exceptions import ValidationError
from django_filters.fields import IsoDateTimeField

MAX_UTC_OFFSET = timedelta(hours=14)  # the widest offset in use on Earth (Kiribati, UTC+14)


class TimestampField(IsoDateTimeField):
    """An ISO 8601 timestamp whose UTC offset is one a clock can show (within ±14:00).

    PostgreSQL refuses offsets of ±16:00 and more with a DataError in the middle of the query;
    refusing them here makes such a value a 400 naming the parameter instead of a 500.
    """

    def to_python(self, value: Any) -> datetime | None:
        dt = super().to_python(value)
        offset = dt.utcoffset() if dt is not None else None
        if offset is not None and abs(offset) > MAX_UTC_OFFSET:
            raise ValidationError("the UTC offset must lie within ±14:00", code="invalid")
        return dt


class TimestampFilter(df.IsoDateTimeFilter):
    field_class = TimestampField
