"""Safe defaults: with no configuration the settings are production ones (DEBUG off, a SECRET_KEY
required, HTTPS only), ``manage.py check --deploy`` is clean with only what a production install
must set, and ``make run`` opts into development explicitly (a generated secret kept with mode 600,
plain HTTP on 127.0.0.1, still no debug pages). Each case runs in a fresh interpreter."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest

from tests.conftest import ROOT

# what a production install sets (docs/operations.md, docs/security.md)
PRODUCTION = {"SECRET_KEY": "p" * 60 + "-Zq8#", "ALLOWED_HOSTS": "media.example.org"}
PROBE = """
import json, django
django.setup()
from django.conf import settings as s
from django.test import Client
r = Client().get("/no-such-page", HTTP_HOST="127.0.0.1")
print(json.dumps({"DEBUG": s.DEBUG, "ssl_redirect": s.SECURE_SSL_REDIRECT, "session_secure": s.SESSION_COOKIE_SECURE,
                  "csrf_secure": s.CSRF_COOKIE_SECURE, "hsts": s.SECURE_HSTS_SECONDS, "key": s.SECRET_KEY,
                  "status": r.status_code, "technical": b"technical_500" in r.content or b"URLconf" in r.content}))
"""


def bare_env(**extra: str) -> dict[str, str]:
    """The environment of a fresh machine: none of the project's variables, only the stack's URLs."""
    keep = {k: v for k, v in os.environ.items()
            if k in ("PATH", "HOME", "LANG", "DATABASE_URL", "BROKER_URL", "MEDIAINTEL_TEST_PG_PORT",
                     "MEDIAINTEL_TEST_REDIS_PORT")}
    return {**keep, "MEDIAINTEL_PROFILE": "test", "DJANGO_SETTINGS_MODULE": "mediaintel.settings", **extra}


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def probe(env: dict[str, str]) -> dict:
    r = run(["-c", PROBE], env)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_without_configuration_the_settings_refuse_to_start_and_say_why():
    r = run(["-c", "import django; django.setup()"], bare_env())
    assert r.returncode != 0
    assert "SECRET_KEY must be set" in r.stderr and "MEDIAINTEL_ENV=development" in r.stderr


def test_the_defaults_are_production_ones():
    got = probe(bare_env(**{**PRODUCTION, "ALLOWED_HOSTS": "127.0.0.1"}))
    assert got["DEBUG"] is False and got["ssl_redirect"] is True
    assert got["session_secure"] and got["csrf_secure"] and got["hsts"] >= 31536000
    assert got["status"] == 301 and not got["technical"]  # to HTTPS, never a debug page


def test_check_deploy_is_clean_with_the_default_settings():
    r = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], bare_env(**PRODUCTION))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "no issues" in r.stdout


def test_an_unknown_environment_name_is_refused():
    r = run(["-c", "import django; django.setup()"], bare_env(MEDIAINTEL_ENV="staging", **PRODUCTION))
    assert r.returncode != 0 and "MEDIAINTEL_ENV must be" in r.stderr


def test_development_is_explicit_and_keeps_a_private_generated_secret(tmp_path):
    key_file = tmp_path / "secret-key"
    env = bare_env(MEDIAINTEL_ENV="development", MEDIAINTEL_SECRET_KEY_FILE=str(key_file))
    first = probe(env)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert first["key"] == key_file.read_text().strip() and len(first["key"]) >= 50
    assert probe(env)["key"] == first["key"]  # every process of the stack shares it
    # plain HTTP on 127.0.0.1 works; still no debug page unless DEBUG=1 is asked for
    assert first["ssl_redirect"] is False and not first["session_secure"] and first["hsts"] == 0
    assert first["DEBUG"] is False and first["status"] == 404 and not first["technical"]


def test_make_run_opts_into_development():
    from mediaintel import supervisor

    env = supervisor.child_env({"DATABASE_URL": "postgres://x@127.0.0.1:1/y"}, base={"PATH": "/usr/bin"})
    assert env["MEDIAINTEL_ENV"] == "development" and env["DJANGO_SETTINGS_MODULE"] == "mediaintel.settings"
    assert "SECRET_KEY" not in env and "DEBUG" not in env
    # an operator's explicit choice wins
    assert supervisor.child_env({}, base={"MEDIAINTEL_ENV": "production"})["MEDIAINTEL_ENV"] == "production"


@pytest.mark.parametrize("value", ["", "   "])
def test_an_empty_secret_key_counts_as_unset(value):
    r = run(["-c", "import django; django.setup()"], bare_env(SECRET_KEY=value))
    assert r.returncode != 0 and "SECRET_KEY must be set" in r.stderr
