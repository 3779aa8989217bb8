"""Search test fixtures: users of each role, API clients, and query vectors computed in the test process."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group
from rest_framework.test import APIClient


def _user(django_user_model: Any, name: str, role: str | None) -> Any:
    user = django_user_model.objects.create_user(name, password="pw-" + name)
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def uploader(django_user_model: Any) -> Any:
    return _user(django_user_model, "uploader-a", "uploader")


@pytest.fixture
def other_uploader(django_user_model: Any) -> Any:
    return _user(django_user_model, "uploader-b", "uploader")


@pytest.fixture
def moderator_user(django_user_model: Any) -> Any:
    return _user(django_user_model, "moderator-m", "moderator")


def client_for(user: Any) -> APIClient:
    c = APIClient()
    c.force_authenticate(user)
    return c


@pytest.fixture
def local_embedding(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Embed queries in the test process instead of a worker (for tests not about the worker path)."""
    from apps.search import remote
    from tests.search.helpers import embed, text_engine_version

    calls: list[str] = []

    def fake(text: str, timeout: float | None = None) -> remote.QueryVector:
        calls.append(text)
        return remote.QueryVector(embed([remote.normalise(text)])[0].tolist(), text_engine_version(), "", 0.0)

    monkeypatch.setattr(remote, "embed_query", fake)
    return calls
