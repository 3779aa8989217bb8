"""API clients for ingestion tests."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from rest_framework.test import APIClient


def client_as(name: str, role: str) -> APIClient:
    """An API client authenticated as a new user ``name`` with ``role`` (uploader, moderator, admin)."""
    user = get_user_model().objects.create_user(name, password="pw-" + name)
    user.groups.add(Group.objects.get(name=role))
    c = APIClient()
    c.force_authenticate(user)
    return c
