"""``make run``: the whole platform on one machine, in the foreground, stopped with Ctrl-C.

Starts the embedded stack (unless DATABASE_URL/BROKER_URL point elsewhere), migrates,
makes sure a demo admin exists, then runs gunicorn, a Celery worker and beat as child
processes, prints where everything is, and on Ctrl-C stops the children and the stack.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from mediacommon.metrics import clear_dir
from mediaintel import devstack

ROOT = Path(__file__).resolve().parent.parent


def _say(msg: str) -> None:
    print(f"[mediaintel] {msg}", flush=True)


def _manage(env: dict[str, str], *args: str, capture: bool = False) -> str:
    r = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, text=True,
                       capture_output=capture)
    return r.stdout if capture else ""


def _admin_credentials(env: dict[str, str], home: Path) -> tuple[str, str, str]:
    """The demo admin (created once; its password is kept under var/<profile>/, mode 600) and a
    fresh API token for this run: tokens are stored hashed, so each start mints one (``--replace``
    revokes the previous run's) and prints it."""
    cred = home / "admin-credentials"
    if cred.exists():
        user, pw = cred.read_text().split()[:2]
    else:
        user, pw = "admin", secrets.token_urlsafe(9)
        _manage(env, "createuser", user, "--role", "admin", "--password", pw, "--no-token", capture=True)
        fd = os.open(cred, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(f"{user} {pw}\n")
    cred.chmod(0o600)
    out = _manage(env, "tokens", "create", user, "--name", "make-run", "--days", "30", "--replace", capture=True)
    token = next(line.split("=", 1)[1] for line in out.splitlines() if line.startswith("token="))
    return user, pw, token


def child_env(stack_env: dict[str, str], base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of every child: the stack's URLs, and development mode unless the operator
    chose otherwise (``MEDIAINTEL_ENV=development``: plain HTTP on 127.0.0.1 and a generated
    secret kept in ``var/<profile>/secret-key``, mode 600; DEBUG stays off unless ``DEBUG=1``)."""
    base = dict(os.environ if base is None else base)
    return {**base, **stack_env, "MEDIAINTEL_ENV": base.get("MEDIAINTEL_ENV", "development"),
            "DJANGO_SETTINGS_MODULE": "mediaintel.settings", "PYTHONUNBUFFERED": "1"}


def main() -> int:
    p = devstack.profile(os.environ.get("MEDIAINTEL_PROFILE", "run"))
    t0 = time.monotonic()
    try:
        stack_env = devstack.up(p)
    except devstack.StackError as e:
        _say(f"cannot start the stack: {e}")
        return 1
    env = child_env(stack_env)
    # every model warm from the start, loaded once per worker and shared by its pool children
    env.setdefault("MEDIAINTEL_PRELOAD", "role")
    _manage(env, "migrate", "--no-input", "-v", "0")
    _manage(env, "collectstatic", "--no-input", "-v", "0")
    user, pw, token = _admin_credentials(env, p.home)
    port = p.web_port
    logs = p.home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    # one Prometheus multiprocess directory for every child: /metrics shows web and workers alike
    metrics_dir = p.home / "prometheus"
    clear_dir(metrics_dir)
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    children = {
        "web": [sys.executable, "-m", "gunicorn", "mediaintel.wsgi", "-c", "python:mediaintel.gunicorn_conf",
                "-b", f"127.0.0.1:{port}",
                "-w", os.environ.get("WEB_CONCURRENCY", "2"), "--timeout", "600", "--access-logfile", "-",
                "--no-control-socket"],
        "worker": [sys.executable, "-m", "workers", "--role", os.environ.get("MEDIAINTEL_WORKER_ROLE", "all"),
                   "-c", os.environ.get("MEDIAINTEL_WORKER_CONCURRENCY", "3")],
        # one child that only answers search queries, so they never wait behind pipeline stages
        "search": [sys.executable, "-m", "workers", "--role", "search", "-c", "1", "--name", "search@%h"],
        "beat": [sys.executable, "-m", "celery", "-A", "mediaintel", "beat", "-l", "INFO",
                 "-s", str(p.home / "celerybeat-schedule")],
    }
    for name, cmd in children.items():
        out = (logs / f"{name}.log").open("ab")
        procs[name] = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                       start_new_session=True)
    if not devstack.port_open(port):
        for _ in range(100):
            if devstack.port_open(port):
                break
            time.sleep(0.1)
    base = f"http://127.0.0.1:{port}"
    _say(f"up in {time.monotonic() - t0:.1f}s — logs in {logs}")
    _say(f"console   {base}/console/")
    _say(f"API docs  {base}/api/docs/")
    _say(f"admin     {base}/admin/     user: {user}  password: {pw}")
    _say(f"API token {token}   (curl -H 'Authorization: Token {token}' {base}/api/v1/assets/)")
    _say(f"health    {base}/readyz (live: {base}/livez)    metrics {base}/metrics")
    if os.environ.get("MEDIAINTEL_DEMO", "1") != "0":
        _say("ingesting the demo set (set MEDIAINTEL_DEMO=0 to skip)…")
        demo = subprocess.run([sys.executable, "manage.py", "demo", "--wait"], cwd=ROOT, env=env)
        if demo.returncode != 0:
            _say("the demo set did not finish cleanly; see the console's jobs and dead letters")
    _say("press Ctrl-C to stop")

    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    code = 0
    while not stopping:
        for name, proc in procs.items():
            if proc.poll() is not None:
                _say(f"{name} exited with {proc.returncode}; see {logs / (name + '.log')}; stopping")
                stopping, code = True, 1
                break
        time.sleep(0.5)
    _say("stopping…")
    for proc in procs.values():
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + 20
    for proc in procs.values():
        try:
            proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    devstack.down(p)
    _say("stopped")
    return code


if __name__ == "__main__":
    sys.exit(main())
