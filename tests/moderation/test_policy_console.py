"""Policies are edited in the console as YAML: admins save a new version, moderators only read."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from apps.moderation.models import PolicyVersion
from apps.moderation.services import active_policy_version

pytestmark = pytest.mark.django_db


def _login(client, django_user_model, name, role):
    user = django_user_model.objects.create_user(name, password="pw")
    user.groups.add(Group.objects.get(name=role))
    client.force_login(user)
    return user


def test_admin_saves_a_new_version_moderator_cannot(client, django_user_model):
    before = active_policy_version()
    _login(client, django_user_model, "adm", "admin")
    page = client.get("/console/policy/")
    assert page.status_code == 200 and b"sexual/explicit_nudity" in page.content
    doc = page.context["document"].replace("review: 0.5", "review: 0.45", 1)
    assert doc != page.context["document"]
    r = client.post("/console/policy/", {"document": doc, "note": "stricter"})
    assert r.status_code == 302
    after = active_policy_version()
    assert after.number == before.number + 1 and after.note == "stricter"
    bad = client.post("/console/policy/", {"document": "categories: {nope/nope: {review: 2}}"}, follow=True)
    assert b"Not saved" in bad.content and active_policy_version().pk == after.pk
    client.logout()
    _login(client, django_user_model, "mod", "moderator")
    assert client.get("/console/policy/").status_code == 200
    assert client.post("/console/policy/", {"document": doc}).status_code == 403
    assert PolicyVersion.objects.filter(policy=after.policy).count() == after.number


def test_admin_site_adds_a_policy_version_through_the_service(client, django_user_model):
    import json

    before = active_policy_version()
    admin = django_user_model.objects.create_superuser("root", password="pw")
    client.force_login(admin)
    rules = dict(before.rules)
    rules["categories"] = {**rules["categories"], "profanity": {"review": 0.9, "block": 1.01}}
    r = client.post("/admin/moderation/policyversion/add/", {"policy": before.policy_id, "rules": json.dumps(rules),
                                                            "note": "via admin"})
    assert r.status_code == 302, r.content[:500]
    after = active_policy_version()
    assert after.number == before.number + 1 and after.rules["categories"]["profanity"]["review"] == 0.9
