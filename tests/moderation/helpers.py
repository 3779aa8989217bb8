"""Helpers for moderation tests: users with roles, API clients, assets with insights, a webhook receiver."""

from __future__ import annotations

import hashlib
import json
import socket
import socketserver
import ssl
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from apps.assets.models import MediaAsset


def make_user(name: str, role: str | None) -> Any:
    user = get_user_model().objects.create_user(name, password="x")
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user


def api(user: Any) -> APIClient:
    c = APIClient()
    c.force_authenticate(user)
    return c


def make_asset(uploader: Any = None, kind: str = "text", title: str = "") -> MediaAsset:
    sha = hashlib.sha256(uuid.uuid4().bytes).hexdigest()
    return MediaAsset.objects.create(kind=kind, sha256=sha, size=10, mime_type="text/plain", storage_key=f"k/{sha}",
                                     uploader=uploader, title=title, status="ready")


def flag(asset: MediaAsset, category: str = "threat", score: float = 0.9, matched: str = "kill you") -> None:
    """A text-moderation insight as the ``text_flags`` stage would write it."""
    from apps.insights.models import TextSpanFlag

    TextSpanFlag.objects.create(asset=asset, stage="text_flags", engine="profanity-lexicon", engine_version="t@1",
                                source="text", category=category, score=score, char_start=0,
                                char_end=len(matched), matched=matched)


def phash(asset: MediaAsset, bits: str, quality: int = 90, keyframe_index: int | None = None) -> None:
    from apps.insights.models import PerceptualHash

    PerceptualHash.objects.create(asset=asset, stage="hash", engine="pdq", engine_version="pdq@1", hash=bits,
                                  quality=quality, keyframe_index=keyframe_index)


def flip(bits: str, n: int, start: int = 0) -> str:
    """``bits`` with ``n`` bits inverted (Hamming distance n)."""
    b = list(bits)
    for i in range(start, start + n):
        b[i] = "1" if b[i] == "0" else "0"
    return "".join(b)


def random_bits(seed: int) -> str:
    import random

    rng = random.Random(seed)
    return "".join(rng.choice("01") for _ in range(256))


def moderated(asset: MediaAsset) -> dict[str, Any]:
    from apps.moderation.services import moderate_asset

    return moderate_asset(asset)


# ------------------------------------------------------------------ a real HTTP receiver
@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 in a thread; ``statuses`` are answered in order, then ``default``.

    Each request is recorded when it arrives; the answer waits ``delays`` seconds in order, then
    ``default_delay`` (a slow receiver)."""

    statuses: list[int] = field(default_factory=list)
    default: int = 200
    delays: list[float] = field(default_factory=list)
    default_delay: float = 0.0
    requests: list[Received] = field(default_factory=list)
    #: serve HTTPS with this server context
    tls: ssl.SSLContext | None = None
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.server.server_address[1]}/hook"

    def start(self) -> Receiver:
        receiver = self
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with lock:
                    receiver.requests.append(Received(dict(self.headers.items()), body))
                    code = receiver.statuses.pop(0) if receiver.statuses else receiver.default
                    delay = receiver.delays.pop(0) if receiver.delays else receiver.default_delay
                if delay:
                    time.sleep(delay)
                self.send_response(code)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok" if code < 300 else b"receiver says no")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if self.tls:
            self.server.socket = self.tls.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()


@dataclass
class Trickler:
    """A raw HTTP server on 127.0.0.1 that reads a request, then writes ``response`` one byte every
    ``interval`` seconds (after ``prefix`` bytes at once): a receiver that holds a connection open
    while always sending *something*. ``sent`` holds, per connection, the bytes written before it
    ended; ``finished`` whether the whole response went out."""

    response: bytes = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    interval: float = 0.25
    prefix: int = 0
    requests: int = 0
    sent: list[int] = field(default_factory=list)
    finished: list[bool] = field(default_factory=list)
    server: socketserver.ThreadingTCPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def start(self) -> Trickler:
        t = self
        lock = threading.Lock()

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                sock: socket.socket = self.request
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = sock.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                head, _, body = data.partition(b"\r\n\r\n")
                length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                while len(body) < length:
                    chunk = sock.recv(65536)
                    if not chunk:
                        return
                    body += chunk
                with lock:
                    t.requests += 1
                sent = 0
                try:
                    sock.sendall(t.response[:t.prefix])
                    sent = t.prefix
                    for i in range(t.prefix, len(t.response)):
                        time.sleep(t.interval)
                        sock.sendall(t.response[i:i + 1])
                        sent += 1
                except OSError:
                    pass
                with lock:
                    t.sent.append(sent)
                    t.finished.append(sent == len(t.response))

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()


def header(r: Received, name: str) -> str:
    return next((v for k, v in r.headers.items() if k.lower() == name.lower()), "")

