"""The web tier runs on ``requirements/base.txt`` alone (what ``docker/web.Dockerfile`` installs).

A virtual environment is built from base.txt only (no ``--system-site-packages``), keyed by the
file's sha256 under ``var/webvenv/`` and reused while the file is unchanged. gunicorn from that
environment serves the test database; a real worker from the full environment processes the
uploads. Through HTTP only: a video, an audio file, an image and a text document are uploaded
and become ready, ``/healthz`` answers 200, and a semantic search gets its query vector from the
worker. numpy and torch cannot even be imported in the web environment.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse

from tests import media
from tests.conftest import ROOT, wait_for, worker_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

BASE_TXT = ROOT / "requirements" / "base.txt"
DOC = ("Timetable of the island ferry.\n\nThe ferry to the lighthouse island leaves the harbour every "
       "twenty minutes, from six in the morning until midnight, and bicycles travel free of charge.\n")


def _build_web_venv() -> Path:
    """``var/webvenv/<sha256 of base.txt>``: built once per content of base.txt, then reused.

    Concurrent test sessions serialize on a lock file; a half-built environment (no ``.complete``
    marker) is removed and rebuilt, and environments of earlier versions of base.txt are removed.
    The build time is written to ``.build-seconds`` and printed (``pytest -s``).
    """
    digest = hashlib.sha256(BASE_TXT.read_bytes()).hexdigest()[:16]
    home = ROOT / "var" / "webvenv"
    home.mkdir(parents=True, exist_ok=True)
    venv = home / digest
    with (home / f"{digest}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (venv / ".complete").exists():
            return venv
        shutil.rmtree(venv, ignore_errors=True)
        t0 = time.monotonic()
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
        r = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-compile",
                            "--disable-pip-version-check", "-r", str(BASE_TXT)], capture_output=True, text=True)
        if r.returncode != 0:
            pytest.fail(f"pip install -r requirements/base.txt failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
        seconds = time.monotonic() - t0
        (venv / ".build-seconds").write_text(f"{seconds:.1f}\n")
        (venv / ".complete").write_text(digest + "\n")
        print(f"\nweb venv built from requirements/base.txt in {seconds:.1f}s: {venv}")
        for stale in home.iterdir():  # environments of earlier versions of base.txt
            if stale.is_dir() and stale.name != digest:
                shutil.rmtree(stale, ignore_errors=True)
                (home / f"{stale.name}.lock").unlink(missing_ok=True)
    return venv


@pytest.fixture(scope="session")
def web_venv() -> Path:
    return _build_web_venv()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Web:
    base: str
    token: str
    log: Path

    def url(self, path: str, **query: str) -> str:
        return self.base + path + (("?" + urllib.parse.urlencode(query)) if query else "")

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None,
                auth: bool = True, timeout: float = 120, **query: str) -> tuple[int, Any]:
        h = {"Accept": "application/json", **(headers or {})}
        if auth:
            h["Authorization"] = f"Token {self.token}"
        # always http://127.0.0.1:<port>
        req = urllib.request.Request(self.url(path, **query), data=body, headers=h, method=method)  # noqa: S310
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode(errors="replace")

    def upload(self, path: Path) -> tuple[int, Any]:
        return self.request("POST", reverse("asset-list"), body=path.read_bytes(), timeout=180, headers={
            "Content-Type": "application/octet-stream",
            "Content-Disposition": f'attachment; filename="{path.name}"'})


@pytest.fixture
def web(web_venv: Path, start_worker: Any, isolated_storage: Path, django_user_model: Any) -> Iterator[Web]:
    """gunicorn from the base.txt environment on a free port, with a token of an uploader+moderator."""
    from django.contrib.auth.models import Group

    from apps.accounts.services import create_token

    user = django_user_model.objects.create_user("web-tier", password="x")
    user.groups.add(*Group.objects.filter(name__in=["uploader", "moderator"]))
    _, token = create_token(user, actor=None, name="web-tier")

    port = _free_port()
    log = ROOT / "var" / "test" / "web-tier-gunicorn.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    env = worker_env(MEDIAINTEL_SEARCH_EMBED_TIMEOUT="120", PATH=f"{web_venv / 'bin'}:{os.environ['PATH']}")
    for leak in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"):
        env.pop(leak, None)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [str(web_venv / "bin" / "gunicorn"), "mediaintel.wsgi", "-b", f"127.0.0.1:{port}", "-w", "2",
             "--timeout", "300", "--no-control-socket", "--chdir", str(ROOT)],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    w = Web(f"http://127.0.0.1:{port}", token, log)

    def up() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"gunicorn exited with {proc.returncode}; see {log}")
        try:
            return w.request("GET", reverse("healthz"), auth=False, timeout=30)[0] in (200, 503)
        except OSError:
            return False

    try:
        wait_for(up, timeout=60, what="gunicorn from the base.txt environment to answer")
        yield w
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def test_numpy_and_torch_are_absent_from_the_web_environment(web_venv):
    for module in ("numpy", "torch"):
        r = subprocess.run([str(web_venv / "bin" / "python"), "-c", f"import {module}"], capture_output=True,
                           text=True, env={"PATH": "/usr/bin:/bin"})
        assert r.returncode != 0 and "ModuleNotFoundError" in r.stderr, (module, r.stderr)
    # and the web side of the code imports there: settings, URLs, every app, the probe
    r = subprocess.run([str(web_venv / "bin" / "python"), "-c",
                        "import django; django.setup(); import mediaintel.urls, apps.assets.probe, "
                        "apps.search.remote, mediaintel.wsgi, sys; print('numpy' in sys.modules)"],
                       capture_output=True, text=True, cwd=ROOT,
                       env={"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "mediaintel.settings_test",
                            "MEDIAINTEL_TEST_PG_PORT": os.environ.get("MEDIAINTEL_TEST_PG_PORT", "25433")})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"


def test_web_on_base_requirements_ingests_every_kind_and_searches(web, start_worker, tmp_path):
    start_worker(concurrency=2, name="web-tier")
    video = media.make_video(tmp_path / "clip.mp4", (("checker:teal", 1.5), ("gradient", 1.5)), size=(320, 240),
                             tone_hz=440.0, motion=False)
    audio = media.make_tone_wav(tmp_path / "tone.wav", 2.0)
    image = media.make_image(tmp_path / "still.png", size=(320, 240))
    text = tmp_path / "ferry.txt"
    text.write_text(DOC)

    ids = {}
    for kind, path in (("video", video), ("audio", audio), ("image", image), ("text", text)):
        status, body = web.upload(path)
        assert status == 201, (kind, status, body)
        assert body["kind"] == kind, body
        ids[kind] = body["id"]

    def statuses() -> dict[str, str] | None:
        out = {k: web.request("GET", reverse("asset-detail", args=[i]))[1]["status"] for k, i in ids.items()}
        return out if all(s in ("ready", "failed") for s in out.values()) else None

    final = wait_for(statuses, timeout=900, every=2.0, what="the four uploads to be processed")
    assert final == dict.fromkeys(ids, "ready"), final

    status, health = web.request("GET", reverse("healthz"), auth=False)
    assert status == 200, health
    assert all(c["ok"] for c in health["checks"].values()), health

    # the query vector comes from the worker (search queue); the web process never loads a model
    status, body = web.request("GET", reverse("search"), q="how often does the boat go to the lighthouse",
                               mode="semantic", timeout=180)
    assert status == 200, body
    assert not body["degraded"], body.get("degraded_reason")
    assert body["query_vector_cache"] == "miss"
    assert body["results"] and body["results"][0]["asset"]["id"] == ids["text"], body["results"]
