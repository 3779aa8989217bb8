"""Asset deletion: one audited action (``apps.assets.actions.delete_asset``) behind the API.

The Django admin is read-only for assets, so the API is the one entry point. The audit record
names who deleted what, and an audit write that fails leaves the asset in place.
"""

from __future__ import annotations

import pytest
from django.contrib.admin.sites import site
from django.test import RequestFactory
from django.urls import reverse

from apps.assets.models import MediaAsset
from apps.audit.models import AuditEvent
from tests.audit_failure import undone
from tests.moderation.helpers import api, make_asset, make_user

pytestmark = pytest.mark.django_db


def test_deleting_an_asset_through_the_api_removes_it_with_one_audit_record() -> None:
    asset = make_asset(title="note.txt")
    r = api(make_user("ada", "admin")).delete(reverse("asset-detail", args=[asset.pk]))
    assert r.status_code == 204
    assert not MediaAsset.objects.filter(pk=asset.pk).exists()
    [ev] = AuditEvent.objects.filter(verb="asset.deleted", target_id=str(asset.pk))
    assert (ev.actor_label, ev.target_type, ev.payload["sha256"], ev.payload["title"]) == (
        "ada", "asset", asset.sha256, "note.txt")


def test_an_audit_write_that_fails_leaves_the_asset_in_place() -> None:
    asset = make_asset(title="note.txt")
    client = api(make_user("ada", "admin"))
    undone(lambda: client.delete(reverse("asset-detail", args=[asset.pk])))
    assert MediaAsset.objects.filter(pk=asset.pk).exists()


def test_the_admin_cannot_delete_or_change_assets_when_asked_by_a_superuser() -> None:
    request = RequestFactory().get("/")
    request.user = make_user("root", None)
    request.user.is_superuser = True
    model_admin = site._registry[MediaAsset]
    assert not model_admin.has_delete_permission(request) and not model_admin.has_change_permission(request)
