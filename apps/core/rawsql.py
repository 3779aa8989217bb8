"""Raw SQL for the few hot paths where one statement replaces several ORM round trips.

:func:`columns` lists a model's columns for a ``SELECT``/``RETURNING`` list and
:func:`hydrate` turns such a row back into a model instance, with the same field
conversions the ORM applies (JSON fields arrive as text from the PostgreSQL backend).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Model

M = TypeVar("M", bound=Model)


def table(model: type[Model]) -> str:
    """The model's quoted table name."""
    return connections[DEFAULT_DB_ALIAS].ops.quote_name(model._meta.db_table)


def columns(model: type[Model], alias: str) -> str:
    """``alias."col", …`` for every concrete field of ``model``, in field order."""
    return ", ".join(f'{alias}."{f.column}"' for f in model._meta.concrete_fields)


def width(model: type[Model]) -> int:
    """How many values :func:`columns` selects."""
    return len(model._meta.concrete_fields)


def hydrate(model: type[M], values: Sequence[Any], using: str = DEFAULT_DB_ALIAS) -> M:
    """A model instance from a row selected with :func:`columns` (converted like the ORM does)."""
    conn = connections[using]
    fields = model._meta.concrete_fields
    out = []
    for f, v in zip(fields, values, strict=True):
        if v is not None and hasattr(f, "from_db_value"):
            v = f.from_db_value(v, None, conn)
        out.append(v)
    return model.from_db(using, [f.attname for f in fields], out)
