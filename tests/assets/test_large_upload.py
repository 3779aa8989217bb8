"""A 1 GiB upload through a real gunicorn: accepted, hashed right, in constant server memory.

The body (multipart, a valid 16-bit PCM WAV of low-level noise) is generated on the fly and
streamed with an explicit ``Content-Length``; neither side ever holds the file in memory. The
worker's peak RSS (``VmHWM``) must stay under :data:`RSS_LIMIT` and grow by less than
:data:`RSS_GROWTH_LIMIT` during the upload. Both upload forms are covered: multipart and the raw
``application/octet-stream`` body.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
RSS_LIMIT = 100 * 1024 * 1024  # absolute; an idle worker (Django, DRF, Celery client, all apps) is ~88 MiB
RSS_GROWTH_LIMIT = 16 * 1024 * 1024  # what the upload itself may add: constant memory, not the file
SAMPLE_RATE, CHANNELS = 48_000, 2
DATA_BYTES = 1 << 30  # 1 GiB of samples: 5,592 s of 48 kHz stereo
BLOCK = 1 << 20

# post_worker_init: the pipeline is not started for real (no stage messages on the shared broker);
# the asset ids it would start are appended to a file the test reads.
GUNICORN_CONF = '''
import os


def post_worker_init(worker):
    from apps.pipeline import services

    def start_pipeline(asset_id, **kw):
        with open(os.environ["MEDIAINTEL_TEST_PIPELINE_LOG"], "a") as f:
            f.write(f"{asset_id}\\n")

    services.start_pipeline = start_pipeline
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wav_header(data_bytes: int, sample_rate: int = SAMPLE_RATE, channels: int = CHANNELS) -> bytes:
    block_align = channels * 2
    return (b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVE"
            + b"fmt " + struct.pack("<IHHIIHH", 16, 1, channels, sample_rate, sample_rate * block_align,
                                    block_align, 16)
            + b"data" + struct.pack("<I", data_bytes))


def wav_chunks(data_bytes: int) -> Iterator[bytes]:
    """The WAV file, 1 MiB at a time: header, then quiet noise (a few distinct blocks, cycled)."""
    rng = np.random.default_rng(7)
    blocks = [rng.integers(-64, 64, BLOCK // 2, dtype=np.int16).astype("<i2").tobytes() for _ in range(8)]
    yield wav_header(data_bytes)
    left, i = data_bytes, 0
    while left > 0:
        chunk = blocks[i % len(blocks)][: min(BLOCK, left)]
        left -= len(chunk)
        i += 1
        yield chunk


@dataclass
class Upload:
    """A request body streamed from a generator, multipart or raw (``application/octet-stream``).

    ``sha256`` and ``sent`` describe the file's bytes once the body has been sent.
    """

    chunks: Iterator[bytes]
    size: int
    filename: str
    raw: bool = False
    boundary: str = ""
    sha256: str = ""
    sent: int = 0

    def __post_init__(self) -> None:
        self.boundary = "mi-" + uuid.uuid4().hex
        self._head = self._tail = b""
        if not self.raw:
            self._head = (f"--{self.boundary}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nbig\r\n"
                          f"--{self.boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                          f"filename=\"{self.filename}\"\r\nContent-Type: audio/wav\r\n\r\n").encode()
            self._tail = f"\r\n--{self.boundary}--\r\n".encode()

    @property
    def content_length(self) -> int:
        return len(self._head) + self.size + len(self._tail)

    @property
    def headers(self) -> dict[str, str]:
        if self.raw:
            kind = {"Content-Type": "application/octet-stream",
                    "Content-Disposition": f'attachment; filename="{self.filename}"'}
        else:
            kind = {"Content-Type": f"multipart/form-data; boundary={self.boundary}"}
        return {**kind, "Content-Length": str(self.content_length)}

    def __iter__(self) -> Iterator[bytes]:
        h = hashlib.sha256()
        yield self._head
        for chunk in self.chunks:
            h.update(chunk)
            self.sent += len(chunk)
            yield chunk
        self.sha256 = h.hexdigest()
        yield self._tail


def vm_hwm(pid: int) -> int:
    """Peak resident set size of ``pid`` in bytes (``VmHWM``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmHWM for {pid}")


class Gunicorn:
    def __init__(self, tmp: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.log = tmp / "gunicorn.log"
        conf = tmp / "gunicorn_conf.py"
        conf.write_text(GUNICORN_CONF)
        cmd = [sys.executable, "-m", "gunicorn", "mediaintel.wsgi", "-b", f"127.0.0.1:{self.port}", "-w", "1",
               "--timeout", "600", "--no-control-socket", "-c", str(conf)]  # sync worker, production's timeout
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)

    def worker_pid(self) -> int:
        import psutil

        kids = psutil.Process(self.proc.pid).children()
        assert len(kids) == 1, kids
        return kids[0].pid

    def request(self, method: str, path: str, token: str, body=None, headers=None, timeout: float = 600):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers={"Authorization": f"Token {token}", **(headers or {})})
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def wait_ready(self, token: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"gunicorn exited:\n{self.tail()}")
            try:
                status, _ = self.request("GET", "/api/v1/assets/", token, timeout=5)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.3)
        pytest.fail(f"gunicorn not ready within {timeout}s:\n{self.tail()}")

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


@pytest.fixture
def server(transactional_db, tmp_path):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from apps.accounts.services import create_token
    from tests.conftest import worker_env

    user = get_user_model().objects.create_user("bigup", password="pw-bigup")
    user.groups.add(Group.objects.get(name="uploader"))
    token = create_token(user, actor=None, name="test")[1]
    media_root, upload_tmp = tmp_path / "media", tmp_path / "upload-tmp"
    media_root.mkdir()
    upload_tmp.mkdir()
    duration = DATA_BYTES / (SAMPLE_RATE * CHANNELS * 2)
    env = worker_env(MEDIAINTEL_MEDIA_ROOT=str(media_root), MEDIAINTEL_TMP_DIR=str(upload_tmp), DEBUG="1",
                     MEDIAINTEL_STORAGE="local", MEDIAINTEL_MAX_DURATION=str(max(4 * 3600.0, 2 * duration)),
                     MEDIAINTEL_TEST_PIPELINE_LOG=str(tmp_path / "pipeline.log"), LOG_LEVEL="WARNING")
    g = Gunicorn(tmp_path, env)
    try:
        g.wait_ready(token)
        yield g, token, media_root, upload_tmp, tmp_path / "pipeline.log"
    finally:
        g.stop()
        shutil.rmtree(media_root, ignore_errors=True)  # do not leave 1 GiB in pytest's kept tmp dirs
        shutil.rmtree(upload_tmp, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.parametrize("form", ["multipart", "raw"])
def test_one_gib_upload_streams_in_constant_memory(server, form):
    import psutil

    from apps.assets.models import MediaAsset

    g, token, media_root, upload_tmp, pipeline_log = server
    pid = g.worker_pid()
    before = vm_hwm(pid)  # after the readiness request: Django and the API are loaded
    up = Upload(wav_chunks(DATA_BYTES), 44 + DATA_BYTES, "big.wav", raw=form == "raw")
    t0 = time.monotonic()
    status, raw = g.request("POST", "/api/v1/assets/", token, body=up, headers=up.headers)
    elapsed = time.monotonic() - t0
    assert status == 201, raw[:2000]
    body = json.loads(raw)
    assert up.sent == 44 + DATA_BYTES
    assert (body["sha256"], body["size"], body["kind"]) == (up.sha256, 44 + DATA_BYTES, "audio")
    assert body["sample_rate"] == SAMPLE_RATE and body["channels"] == CHANNELS
    assert abs(body["duration"] - DATA_BYTES / (SAMPLE_RATE * CHANNELS * 2)) < 1
    peak = vm_hwm(pid)
    assert g.worker_pid() == pid, "the worker was replaced during the upload"
    helpers = ", ".join(f"{vm_hwm(c.pid) / 2**20:.1f} MiB" for c in psutil.Process(pid).children())
    print(f"\n1 GiB {form} upload: {elapsed:.1f}s ({DATA_BYTES / elapsed / 1e6:.0f} MB/s); worker VmHWM "
          f"{before / 2**20:.1f} MiB before, {peak / 2**20:.1f} MiB after; its probe helper: {helpers or '-'}")
    grew = (peak - before) / 2**20
    assert peak - before < RSS_GROWTH_LIMIT, f"the upload grew the worker's peak RSS by {grew:.1f} MiB"
    assert peak < RSS_LIMIT, f"worker peak RSS {peak / 2**20:.1f} MiB (before the upload {before / 2**20:.1f} MiB)"
    sha = up.sha256
    blob = media_root / "blobs" / sha[:2] / sha[2:4] / sha
    assert blob.stat().st_size == 44 + DATA_BYTES
    assert list(upload_tmp.iterdir()) == []  # the temp file became the blob
    asset = MediaAsset.objects.get(sha256=sha)
    assert asset.storage_key == f"blobs/{sha[:2]}/{sha[2:4]}/{sha}"
    assert pipeline_log.read_text().split() == [str(asset.pk)]
