"""Typed readers for 12-factor configuration and URL parsing (stdlib only)."""

from __future__ import annotations

import os
from urllib.parse import parse_qs, unquote, urlparse


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    v = os.environ.get(name)
    if v is None:
        return default
    return v.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    v = os.environ.get(name)
    return int(v) if v not in (None, "") else default


def env_float(name: str, default: float) -> float:
    v = os.environ.get(name)
    return float(v) if v not in (None, "") else default


def env_list(name: str, default: list[str]) -> list[str]:
    v = os.environ.get(name)
    return [x.strip() for x in v.split(",") if x.strip()] if v else list(default)


def parse_database_url(url: str) -> dict[str, object]:
    """``postgres://user:pass@host:port/name?sslmode=require`` → Django DATABASES entry."""
    u = urlparse(url)
    if u.scheme not in {"postgres", "postgresql", "pgsql"}:
        raise ValueError(f"DATABASE_URL must be a PostgreSQL URL, got scheme {u.scheme!r}")
    options = {k: v[-1] for k, v in parse_qs(u.query).items()}
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(u.path.lstrip("/")) or "mediaintel",
        "USER": unquote(u.username or ""),
        "PASSWORD": unquote(u.password or ""),
        "HOST": u.hostname or "",
        "PORT": str(u.port or ""),
        "OPTIONS": options,
        "CONN_MAX_AGE": env_int("DATABASE_CONN_MAX_AGE", 60),
        "CONN_HEALTH_CHECKS": True,
    }


def dev_secret_key(path: os.PathLike[str] | str) -> str:
    """The development secret kept in ``path`` (mode 600), generated on first use.

    Creation is atomic (a private temp file linked into place), so processes starting together
    all read the same key. Development only: production sets ``SECRET_KEY``.
    """
    import contextlib
    import secrets
    import tempfile
    from pathlib import Path

    p = Path(path)
    try:
        return p.read_text().strip()
    except FileNotFoundError:
        pass
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=".secret-key-")  # created with mode 600
    try:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(50) + "\n")
        with contextlib.suppress(FileExistsError):  # another process won the race: use its key
            os.link(tmp, p)
    finally:
        os.unlink(tmp)
    return p.read_text().strip()
