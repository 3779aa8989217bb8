"""Every console page keeps its name and path, and is served by the app that owns its data
(each app mounts its own ``console_urls`` from mediaintel/urls.py; apps.core serves none)."""

from __future__ import annotations

import uuid

import pytest
from django.test import Client
from django.urls import resolve, reverse

PK = uuid.UUID("00000000-0000-4000-8000-000000000001")

PAGES = [
    ("console-library", {}, "/console/", "apps.assets.console"),
    ("console-asset", {"pk": PK}, f"/console/assets/{PK}/", "apps.assets.console"),
    ("console-asset-report", {"pk": PK}, f"/console/assets/{PK}/report/", "apps.moderation.report"),
    ("console-jobs", {}, "/console/jobs/", "apps.pipeline.console"),
    ("console-dlq", {}, "/console/dead-letters/", "apps.pipeline.console"),
    ("console-dlq-action", {"pk": 7, "action": "replay"}, "/console/dead-letters/7/replay/", "apps.pipeline.console"),
    ("console-evaluations", {}, "/console/evaluations/", "apps.pipeline.evaluation_console"),
    ("console-evaluation-report", {"pk": PK}, f"/console/evaluations/{PK}/report/",
     "apps.pipeline.evaluation_console"),
    ("console-evaluation-results", {"pk": PK}, f"/console/evaluations/{PK}/results.json",
     "apps.pipeline.evaluation_console"),
    ("console-search", {}, "/console/search/", "apps.search.console"),
    ("review-queue", {}, "/console/review/", "apps.moderation.console"),
    ("review-item", {"pk": PK}, f"/console/review/items/{PK}/", "apps.moderation.console"),
    ("console-policy", {}, "/console/policy/", "apps.moderation.policy_console"),
    ("console-webhooks", {}, "/console/webhooks/", "apps.moderation.webhook_console"),
    ("console-webhook-redeliver", {"pk": 3}, "/console/webhooks/3/redeliver/", "apps.moderation.webhook_console"),
]


@pytest.mark.parametrize(("name", "kwargs", "path", "module"), PAGES, ids=[p[0] for p in PAGES])
def test_console_page_keeps_its_path_when_its_app_mounts_it(name, kwargs, path, module):
    assert reverse(name, kwargs=kwargs) == path
    match = resolve(path)
    assert match.url_name == name
    assert match.func.__module__ == module


def test_the_site_root_redirects_to_the_library():
    r = Client().get("/")
    assert r.status_code == 302
    assert r["Location"] == reverse("console-library")
