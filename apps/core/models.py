"""Shared abstract models."""

from __future__ import annotations

import uuid

from django.db import models


def is_uuid(value: str) -> bool:
    """Whether ``value`` parses as a UUID (the id of every :class:`UUIDModel`): check before filtering
    on it, since the database refuses a malformed one with an error, not an empty result."""
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


class UUIDModel(models.Model):
    """UUID primary key plus creation/update timestamps."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
