"""The benches' own databases on the test profile's PostgreSQL (never the test database itself)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def bench_url(db_name: str) -> str:
    from mediaintel import devstack

    return devstack.profile("test").database_url.rsplit("/", 1)[0] + f"/{db_name}"


def prepare_database(db_name: str) -> None:
    """Create (once) and migrate the benchmark database ``db_name``."""
    import psycopg

    url = bench_url(db_name)
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db_name]).fetchone():
            conn.execute(f'CREATE DATABASE "{db_name}"')
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "mediaintel.settings",
           "MEDIAINTEL_ENV": "development"}
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
