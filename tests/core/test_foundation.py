"""The foundation against real services: health, metrics, auth, schema, pgvector, deploy checks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from rest_framework.test import APIClient

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db


def test_healthz_reports_each_dependency(client, empty_broker):
    r = client.get("/healthz")
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["pgvector"].startswith("0.8")
    assert body["checks"]["broker"]["ok"] and body["checks"]["storage"]["ok"]


def test_healthz_is_503_when_the_broker_is_down(client, settings):
    settings.BROKER_URL = "redis://127.0.0.1:1/0"
    r = client.get("/healthz")
    assert r.status_code == 503
    assert r.json()["checks"]["broker"]["ok"] is False
    assert r.json()["checks"]["database"]["ok"] is True


def test_metrics_exposes_latency_and_queue_depths(client):
    client.get("/healthz")
    text = client.get("/metrics").content.decode()
    assert "mediaintel_http_request_duration_seconds_bucket" in text
    assert 'mediaintel_queue_depth{queue="transcribe"}' in text


def test_api_requires_authentication_with_json_error():
    r = APIClient().get("/api/v1/assets/")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "not_authenticated"


def test_createuser_prints_a_working_token(capsys):
    call_command("createuser", "mod1", "--role", "moderator")
    out = capsys.readouterr().out
    token = next(line.split("=", 1)[1] for line in out.splitlines() if line.startswith("token="))
    user = get_user_model().objects.get(username="mod1")
    assert list(user.groups.values_list("name", flat=True)) == ["moderator"]
    c = APIClient()
    c.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert c.get("/api/v1/assets/").status_code == 200


def test_schema_and_offline_docs_render(client):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200 and b"/api/v1/assets/" in schema.content
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"drf_spectacular_sidecar" in docs.content  # served locally, no CDN


def test_roles_exist_after_migrate():
    from django.contrib.auth.models import Group

    assert set(Group.objects.values_list("name", flat=True)) >= {"uploader", "moderator", "admin"}


def test_pgvector_hnsw_cosine_query_through_the_orm():
    from pgvector.django import CosineDistance

    from apps.assets.models import MediaAsset
    from apps.insights.models import TextChunk

    asset = MediaAsset.objects.create(kind="text", sha256="0" * 64, size=1, mime_type="text/plain",
                                      storage_key="k")
    vecs = {"x": [1.0] + [0.0] * 383, "y": [0.0, 1.0] + [0.0] * 382, "xy": [0.7, 0.7] + [0.0] * 382}
    for text, v in vecs.items():
        TextChunk.objects.create(asset=asset, stage="text_embed", engine="e", engine_version="1", source="text",
                                 text=text, embedding=v)
    with connection.cursor() as cur:
        cur.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'textchunk_hnsw_cosine'")
        assert "hnsw" in cur.fetchone()[0]
        cur.execute("SET enable_seqscan = off")
    qs = TextChunk.objects.order_by(CosineDistance("embedding", [0.9, 0.1] + [0.0] * 382))
    assert [c.text for c in qs[:3]] == ["x", "xy", "y"]
    with connection.cursor() as cur:
        cur.execute("EXPLAIN SELECT id FROM insights_textchunk ORDER BY embedding <=> %s::vector LIMIT 3",
                    [str([0.9, 0.1] + [0.0] * 382)])
        plan = " ".join(r[0] for r in cur.fetchall())
    assert "textchunk_hnsw_cosine" in plan


def _without_test_settings() -> dict[str, str]:
    """This process's environment less what ``settings_test`` put there (development mode, a key)."""
    return {k: v for k, v in os.environ.items() if k not in ("MEDIAINTEL_ENV", "SECRET_KEY", "DEBUG")}


def test_check_deploy_is_clean_with_production_settings():
    env = {**_without_test_settings(), "DEBUG": "0", "SECRET_KEY": "p" * 60 + "-Zq8#",
           "ALLOWED_HOSTS": "media.example.org", "MEDIAINTEL_PROFILE": "test",
           "DJANGO_SETTINGS_MODULE": "mediaintel.settings"}
    r = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                       cwd=ROOT, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "no issues" in r.stdout


def test_settings_refuse_to_start_without_secret_in_production():
    env = {**_without_test_settings(), "DEBUG": "0", "MEDIAINTEL_PROFILE": "run",
           "DJANGO_SETTINGS_MODULE": "mediaintel.settings"}
    r = subprocess.run([sys.executable, "-c", "import django; django.setup()"], cwd=ROOT, env=env,
                       capture_output=True, text=True)
    assert r.returncode != 0 and "SECRET_KEY must be set" in r.stderr


def test_request_id_is_echoed_and_logged_as_json(client):
    import io
    import json
    import logging

    from pythonjsonlogger.json import JsonFormatter

    from apps.core.logging import ContextFilter

    assert client.get("/healthz")["X-Request-ID"]  # generated when absent
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter("%(levelname)s %(message)s %(request_id)s"))
    logger = logging.getLogger("django.request")
    logger.addHandler(handler)
    try:
        r = client.get("/api/v1/assets/", HTTP_X_REQUEST_ID="req-12345678")
    finally:
        logger.removeHandler(handler)
    assert r["X-Request-ID"] == "req-12345678"
    line = json.loads(stream.getvalue().splitlines()[-1])
    assert line["request_id"] == "req-12345678" and line["levelname"] == "WARNING"
