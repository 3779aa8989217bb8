"""A webhook secret is text without NUL characters (PostgreSQL cannot store one): refused with a
400 naming `secret`, and the schema says so (a ``pattern``)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.moderation.helpers import api, make_user

pytestmark = pytest.mark.django_db


def test_a_secret_with_a_nul_character_is_refused_and_the_schema_says_so() -> None:
    admin: Any = api(make_user("ada", "admin"))
    r = admin.post("/api/v1/webhooks/", {"url": "https://hooks.example.org/in", "events": ["appeal.decided"],
                                         "secret": "0123456789abcdef\x00"}, format="json")
    assert r.status_code == 400 and "secret" in r.json()["error"]["detail"], r.content
    doc = admin.get("/api/schema/", {"format": "json"}).json()
    pattern = doc["components"]["schemas"]["WebhookSubscriptionRequest"]["properties"]["secret"]["pattern"]
    assert re.fullmatch(pattern, "0123456789abcdef") and not re.fullmatch(pattern, "0123456789abcdef\x00")
    assert doc["components"]["schemas"]["WebhookSubscriptionRequest"]["properties"]["secret"]["minLength"] == 16
