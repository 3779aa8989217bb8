"""Roles against the real database: a role change leaves the user in exactly one role group (the
command, the action and the Django admin agree), and every change is audited."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client
from rest_framework.test import APIClient

from apps.audit.models import AuditEvent

pytestmark = pytest.mark.django_db


def _token(out: str) -> str:
    return next(line.split("=", 1)[1] for line in out.splitlines() if line.startswith("token="))


def _groups(name: str) -> list[str]:
    return sorted(get_user_model().objects.get(username=name).groups.values_list("name", flat=True))


def test_demoting_an_admin_with_createuser_removes_the_admin_role(capsys):
    call_command("createuser", "erin", "--role", "admin")
    capsys.readouterr()
    call_command("createuser", "erin", "--role", "uploader")
    token = _token(capsys.readouterr().out)
    user = get_user_model().objects.get(username="erin")
    assert _groups("erin") == ["uploader"]
    assert not user.is_staff and not user.is_superuser
    c = APIClient()
    c.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert c.get("/api/v1/audit/").status_code == 403  # admin-only
    assert c.get("/api/v1/review-items/").status_code == 403  # moderator-only
    assert c.get("/api/v1/assets/").status_code == 200
    ev = AuditEvent.objects.filter(verb="user.role_changed", target_id=str(user.pk)).order_by("id")
    assert [(e.payload["from"], e.payload["to"]) for e in ev] == [([], "admin"), (["admin"], "uploader")]
    assert ev.last().actor_type == "system" and ev.last().actor_label == "manage.py createuser"


def test_promotion_replaces_the_previous_role():
    from apps.accounts.services import set_role

    call_command("createuser", "finn", "--role", "uploader")
    user = get_user_model().objects.get(username="finn")
    set_role(user, "moderator", actor=None)
    assert _groups("finn") == ["moderator"] and not user.is_superuser
    set_role(user, "moderator", actor=None)  # unchanged: no second event
    assert AuditEvent.objects.filter(verb="user.role_changed", target_id=str(user.pk)).count() == 2
    with pytest.raises(ValueError, match="role must be one of"):
        set_role(user, "owner", actor=None)


def test_createuser_refuses_an_unknown_role_and_an_empty_name():
    with pytest.raises(CommandError):
        call_command("createuser", "gus", "--role", "owner")
    with pytest.raises(CommandError, match="username must not be empty"):
        call_command("createuser", "  ", "--role", "uploader")


def test_the_admin_changes_roles_through_the_action_only(capsys):
    call_command("createuser", "root", "--role", "admin", "--password", "root-pass-1234")
    call_command("createuser", "hana", "--role", "admin")
    capsys.readouterr()
    hana = get_user_model().objects.get(username="hana")
    c = Client()
    c.force_login(get_user_model().objects.get(username="root"))
    # group and superuser flags are not editable on the change form; roles change through the action
    form = c.get(f"/admin/auth/user/{hana.pk}/change/").content.decode()
    assert 'name="groups"' not in form and 'name="is_superuser"' not in form
    r = c.post("/admin/auth/user/", {"action": "make_uploader", "_selected_action": [str(hana.pk)]})
    assert r.status_code == 302
    hana.refresh_from_db()
    assert _groups("hana") == ["uploader"] and not hana.is_superuser and not hana.is_staff
    ev = AuditEvent.objects.filter(verb="user.role_changed", target_id=str(hana.pk)).last()
    assert (ev.payload["from"], ev.payload["to"], ev.actor_label) == (["admin"], "uploader", "root")
