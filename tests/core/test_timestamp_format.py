"""One timestamp format on the wire: RFC 3339 in UTC with ``Z`` — in API bodies, webhook bodies and
event envelopes alike (docs/api.md "Ids and times")."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from apps.core.timestamps import rfc3339
from apps.moderation.models import WebhookDelivery, WebhookSubscription
from tests.moderation.helpers import api, flag, make_asset, make_user, moderated

pytestmark = pytest.mark.django_db

LOOKS_LIKE_A_TIME = re.compile(r"^\d{4}-\d\d-\d\d[T ]\d\d:\d\d")
RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$")


def timestamps(value: Any, path: str = "") -> list[tuple[str, str]]:
    """Every (path, string) in a JSON value that looks like a date-time."""
    if isinstance(value, dict):
        return [t for k, v in value.items() for t in timestamps(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [t for i, v in enumerate(value) for t in timestamps(v, f"{path}[{i}]")]
    if isinstance(value, str) and LOOKS_LIKE_A_TIME.match(value):
        return [(path, value)]
    return []


def test_rfc3339_writes_utc_with_z_whatever_the_zone():
    cet = timezone(timedelta(hours=1))
    assert rfc3339(datetime(2026, 3, 1, 13, 0, 0, tzinfo=cet)) == "2026-03-01T12:00:00Z"
    assert rfc3339(datetime(2026, 3, 1, 12, 0, 0, 5000, tzinfo=UTC)) == "2026-03-01T12:00:00.005000Z"
    with pytest.raises(ValueError):
        rfc3339(datetime(2026, 3, 1))


def test_every_timestamp_the_api_lists_emit_is_rfc3339_utc_with_z():
    admin = api(make_user("ada", "admin"))
    WebhookSubscription.objects.create(url="https://hooks.example.org/x", secret="s" * 32,
                                       events=list(WebhookSubscription.EVENTS))
    asset = make_asset(make_user("ulla", "uploader"))
    flag(asset)
    moderated(asset)
    doc = admin.get("/api/schema/", {"format": "json"}).json()
    seen: list[tuple[str, str]] = []
    for path, item in doc["paths"].items():
        if "get" not in item or "{" in path.replace("{asset_id}", "") or path.endswith("statements-of-reasons/"):
            continue
        r = admin.get(path.replace("{asset_id}", str(asset.pk)))
        if r.status_code != 200 or "json" not in r.get("Content-Type", ""):
            continue
        seen += [(f"{path}{p}", v) for p, v in timestamps(r.json())]
    for detail in (f"/api/v1/assets/{asset.pk}/", f"/api/v1/assets/{asset.pk}/insights/"):
        seen += [(f"{detail}{p}", v) for p, v in timestamps(admin.get(detail).json())]
    assert len({p.split("[")[0] for p, _ in seen}) >= 5, seen  # the walk did meet timestamps
    assert [(p, v) for p, v in seen if not RFC3339_UTC.match(v)] == []


def test_a_timestamp_in_an_audit_payload_is_written_rfc3339_utc_with_z():
    from django.utils import timezone as dj_tz

    from apps.audit.services import Actor, record

    record("test.timed", target_type="asset", target_id="x", actor=Actor.system("test"),
           payload={"at": dj_tz.now(), "nested": [{"until": dj_tz.now()}]})
    body = api(make_user("ada", "admin")).get("/api/v1/audit/", {"verb": "test.timed"}).json()
    found = timestamps(body["results"][0]["payload"])
    assert len(found) == 2 and all(RFC3339_UTC.match(v) for _, v in found), found


def test_webhook_bodies_and_event_envelopes_carry_rfc3339_utc_with_z():
    from apps.events.models import OutboxEvent

    WebhookSubscription.objects.create(url="https://hooks.example.org/x", secret="s" * 32,
                                       events=list(WebhookSubscription.EVENTS))
    asset = make_asset(make_user("ulla", "uploader"))
    flag(asset)
    moderated(asset)
    bodies = [d.payload for d in WebhookDelivery.objects.all()]
    envelopes = [e.envelope() for e in OutboxEvent.objects.all()]
    assert bodies and envelopes
    assert all(RFC3339_UTC.match(b["created_at"]) for b in bodies), bodies
    assert all(RFC3339_UTC.match(e["occurred_at"]) for e in envelopes), envelopes
