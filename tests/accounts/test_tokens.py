"""API tokens against the real database and a real HTTP server: stored as SHA-256 digests only
(the secret is shown once), expiring, revocable, with last use recorded; ``manage.py tokens``
creates, lists and revokes them with clear errors; tokens of the old plain-text table keep working."""

from __future__ import annotations

import hashlib
import http.client
import subprocess
import sys
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from apps.audit.models import AuditEvent
from tests.conftest import ROOT

pytestmark = pytest.mark.django_db


def _token(out: str) -> str:
    return next(line.split("=", 1)[1] for line in out.splitlines() if line.startswith("token="))


def _client(token: str, keyword: str = "Token") -> APIClient:
    c = APIClient()
    c.credentials(HTTP_AUTHORIZATION=f"{keyword} {token}")
    return c


def _all_text_in_the_database() -> str:
    """Every text column of every table, concatenated (to look for a leaked secret)."""
    out = []
    with connection.cursor() as cur:
        cur.execute("SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public' "
                    "AND data_type IN ('text', 'character varying', 'jsonb')")
        for table, column in cur.fetchall():
            cur.execute(f'SELECT "{column}"::text FROM "{table}"')  # noqa: S608 (names from the catalogue)
            out += [r[0] for r in cur.fetchall() if r[0]]
    return "\n".join(out)


def test_createuser_token_is_stored_only_as_a_digest(capsys):
    from apps.accounts.models import ApiToken

    call_command("createuser", "ivy", "--role", "uploader")
    token = _token(capsys.readouterr().out)
    row = ApiToken.objects.get(user__username="ivy")
    assert row.digest == hashlib.sha256(token.encode()).hexdigest()
    assert token not in _all_text_in_the_database()
    assert token.startswith(row.prefix) and len(row.prefix) < len(token) // 2
    assert row.expires_at > timezone.now() + timedelta(days=89)
    assert _client(token).get("/api/v1/assets/").status_code == 200
    assert _client(token, "Bearer").get("/api/v1/assets/").status_code == 200
    ev = AuditEvent.objects.get(verb="token.created", target_id=str(row.pk))
    assert token not in str(ev.payload) and ev.payload["prefix"] == row.prefix


def test_expired_revoked_and_unknown_tokens_are_refused_with_json_errors(capsys):
    from apps.accounts.models import ApiToken
    from apps.accounts.services import revoke_token

    call_command("createuser", "jo", "--role", "uploader")
    token = _token(capsys.readouterr().out)
    row = ApiToken.objects.get(user__username="jo")
    ApiToken.objects.filter(pk=row.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    r = _client(token).get("/api/v1/assets/")
    assert r.status_code == 401 and r.json()["error"]["code"] == "token_expired"
    assert "expired" in r.json()["error"]["message"]
    ApiToken.objects.filter(pk=row.pk).update(expires_at=timezone.now() + timedelta(days=1))
    assert revoke_token(row, actor=None) is True
    assert revoke_token(row, actor=None) is False  # already revoked: nothing to do, no second event
    r = _client(token).get("/api/v1/assets/")
    assert r.status_code == 401 and r.json()["error"]["code"] == "token_revoked"
    r = _client("mi_" + "x" * 43).get("/api/v1/assets/")
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_token"
    assert AuditEvent.objects.filter(verb="token.revoked", target_id=str(row.pk)).count() == 1


def _http_get(base: str, path: str, authorization: str) -> int:
    u = urlsplit(base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        conn.request("GET", path, headers={"Authorization": authorization})
        return conn.getresponse().status
    finally:
        conn.close()


def test_last_use_is_recorded_over_real_http(live_server, capsys):
    from apps.accounts.models import ApiToken

    call_command("createuser", "kai", "--role", "uploader")
    token = _token(capsys.readouterr().out)
    assert ApiToken.objects.get(user__username="kai").last_used_at is None
    assert _http_get(live_server.url, "/api/v1/assets/", f"Token {token}") == 200
    assert ApiToken.objects.get(user__username="kai").last_used_at is not None
    assert _http_get(live_server.url, "/api/v1/assets/", "Token nope") == 401


def test_tokens_command_creates_lists_and_revokes(capsys):
    from apps.accounts.models import ApiToken

    call_command("createuser", "lea", "--role", "moderator")
    first = _token(capsys.readouterr().out)
    call_command("tokens", "create", "lea", "--name", "ci", "--days", "7")
    out = capsys.readouterr().out
    second = _token(out)
    assert "shown once" in out
    ci = ApiToken.objects.get(name="ci")
    assert timedelta(days=6, hours=23) < ci.expires_at - timezone.now() <= timedelta(days=7)
    call_command("tokens", "list")
    listing = capsys.readouterr().out
    assert ci.prefix in listing and "lea" in listing and "ci" in listing
    assert first not in listing and second not in listing
    call_command("tokens", "revoke", str(ci.pk))
    assert "revoked" in capsys.readouterr().out
    assert _client(second).get("/api/v1/assets/").status_code == 401
    assert _client(first).get("/api/v1/assets/").status_code == 200
    call_command("tokens", "list")
    assert ci.prefix not in capsys.readouterr().out  # active ones by default
    call_command("tokens", "list", "--all")
    assert "revoked" in capsys.readouterr().out
    call_command("tokens", "revoke", "--user", "lea")
    assert _client(first).get("/api/v1/assets/").status_code == 401
    # --replace revokes the user's active tokens of that name (``make run`` mints one per start)
    call_command("tokens", "create", "lea", "--name", "make-run")
    a = _token(capsys.readouterr().out)
    call_command("tokens", "create", "lea", "--name", "make-run", "--replace")
    b = _token(capsys.readouterr().out)
    assert _client(a).get("/api/v1/assets/").status_code == 401
    assert _client(b).get("/api/v1/assets/").status_code == 200


@pytest.mark.parametrize("args, message", [
    (["create", "nobody"], "no user named 'nobody'"),
    (["create", "lea", "--days", "0"], "--days must be between 1 and"),
    (["create", "lea", "--days", "100000"], "--days must be between 1 and"),
    (["revoke", "999999"], "no token with id 999999"),
    (["revoke", "abc"], "a token id is a number"),
    (["revoke"], "give a token id or --user"),
    (["revoke", "--user", "nobody"], "no user named 'nobody'"),
])
def test_tokens_command_refuses_bad_arguments(args, message):
    get_user_model().objects.create_user("lea")
    with pytest.raises(CommandError, match=message):
        call_command("tokens", *args)


def test_tokens_command_exits_non_zero_with_a_message():
    from django.conf import settings

    db = settings.DATABASES["default"]
    env = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "mediaintel.settings_test",
           "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"}
    r = subprocess.run([sys.executable, "manage.py", "tokens", "revoke", "abc"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "a token id is a number" in r.stderr and "Traceback" not in r.stderr


def test_plain_tokens_of_the_old_table_are_hashed_by_the_migration():
    """Tokens from before (``authtoken_token``, plain text) keep working once hashed; the plain rows go."""
    import importlib

    from django.apps import apps as global_apps

    from apps.accounts.models import ApiToken

    user = get_user_model().objects.create_user("old-timer")
    old = "0123456789abcdef0123456789abcdef01234567"
    with connection.cursor() as cur:
        cur.execute("CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, created timestamptz NOT NULL, "
                    "user_id integer NOT NULL UNIQUE)")
        cur.execute("INSERT INTO authtoken_token VALUES (%s, now(), %s)", [old, user.pk])
    mig = importlib.import_module("apps.accounts.migrations.0002_hash_plain_tokens")
    mig.hash_plain_tokens(global_apps, connection.schema_editor())
    row = ApiToken.objects.get(user=user)
    assert row.digest == hashlib.sha256(old.encode()).hexdigest() and row.name == "migrated"
    assert _client(old).get("/api/v1/assets/").status_code == 200
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM authtoken_token")
        assert cur.fetchone()[0] == 0
        cur.execute("DROP TABLE authtoken_token")


def test_the_admin_lists_tokens_without_secrets_and_revokes_them(capsys):
    from django.test import Client

    from apps.accounts.models import ApiToken

    call_command("createuser", "root", "--role", "admin")
    capsys.readouterr()
    call_command("createuser", "mo", "--role", "uploader")
    secret = _token(capsys.readouterr().out)
    row = ApiToken.objects.get(user__username="mo")
    c = Client()
    c.force_login(get_user_model().objects.get(username="root"))
    listing = c.get("/admin/accounts/apitoken/").content.decode()
    assert row.prefix in listing and secret not in listing and row.digest not in listing
    detail = c.get(f"/admin/accounts/apitoken/{row.pk}/change/").content.decode()
    assert secret not in detail and row.digest not in detail
    r = c.post("/admin/accounts/apitoken/", {"action": "revoke", "_selected_action": [str(row.pk)]})
    assert r.status_code == 302
    assert _client(secret).get("/api/v1/assets/").json()["error"]["code"] == "token_revoked"
    ev = AuditEvent.objects.get(verb="token.revoked", target_id=str(row.pk))
    assert ev.actor_label == "root"
