"""A request body is read as what its Content-Type says, or refused: a multipart body whose
content holds no readable part (each needs ``Content-Disposition: form-data; name=…``) is a 400
in the error envelope — it was read as an empty form, so a ``PATCH`` answered 200 changing nothing."""

from __future__ import annotations

from typing import Any

import pytest

from apps.moderation.models import WebhookSubscription
from tests.moderation.helpers import api, make_user

pytestmark = pytest.mark.django_db
BOUNDARY = "f6ebf2a4c896c0b8e92dea7724ff9bc9"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


@pytest.fixture
def admin() -> Any:
    return api(make_user("ada", "admin"))


@pytest.fixture
def hook() -> WebhookSubscription:
    return WebhookSubscription.objects.create(url="https://hooks.example.org/in", secret="whsec_0123456789abcdef",
                                              events=["appeal.decided"])


def _patch(client: Any, hook: WebhookSubscription, body: str) -> Any:
    return client.generic("PATCH", f"/api/v1/webhooks/{hook.pk}/", body.encode(), content_type=MULTIPART)


def test_a_multipart_body_without_a_named_part_is_refused(admin: Any, hook: WebhookSubscription) -> None:
    body = f"--{BOUNDARY}\r\n[{{'x': 1}}, 'e', {{}}]--{BOUNDARY}--\r\n"  # a top-level array, not a form
    r = _patch(admin, hook, body)
    assert r.status_code == 400, r.content
    assert r.json()["error"]["code"] == "parse_error"  # as for malformed JSON
    assert "part" in r.json()["error"]["message"]


def test_a_multipart_body_with_named_parts_still_updates(admin: Any, hook: WebhookSubscription) -> None:
    body = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"enabled\"\r\n\r\nfalse\r\n"
            f"--{BOUNDARY}--\r\n")
    r = _patch(admin, hook, body)
    assert r.status_code == 200, r.content
    hook.refresh_from_db()
    assert hook.enabled is False


def test_an_empty_multipart_form_is_an_empty_update(admin: Any, hook: WebhookSubscription) -> None:
    r = _patch(admin, hook, f"--{BOUNDARY}--\r\n")
    assert r.status_code == 200, r.content
