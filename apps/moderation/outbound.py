"""Outbound HTTP for webhooks: which targets may be contacted, a connection pinned to the address
that was checked, and one wall-clock deadline per request.

Invariants:

* A request only ever goes to an address :func:`check_url` allowed. The connection is made to
  that very address (the host name is not resolved again, so a DNS answer that changes between
  the check and the connect cannot redirect it), with the original ``Host`` header and, for
  https, SNI and certificate verification for the host name.
* Refused always: link-local (``169.254.0.0/16`` with the cloud metadata address, ``fe80::/10``),
  multicast, unspecified, reserved and documentation ranges, non-http(s) schemes, credentials
  in the URL. Refused unless ``allow_private``: loopback and private ranges (RFC 1918,
  CGNAT ``100.64.0.0/10``, ULA ``fc00::/7``). An IPv6 address embedding an IPv4 one
  (IPv4-mapped, NAT64, 6to4) is judged by the IPv4 address. A name is refused when *any* of its
  addresses is.
* One clock per request: name resolution, connect, TLS handshake, sending, and reading the
  status line and headers all end by the deadline (a receiver that trickles one byte at a
  time is cut there). The body of the answer is never read, and nothing the receiver sends is
  kept except the status code: error texts are our own.
* Redirects are not followed (a 3xx is a failed attempt).
"""

from __future__ import annotations

import errno
import http.client
import io
import ipaddress
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: kinds of address a receiver may have only when private targets are allowed
PRIVATE_KINDS = frozenset({"loopback", "private"})
_PRIVATE_NETS = tuple(ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7", "fec0::/10"))
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
#: special-purpose ranges Python does not count as private (IETF protocol assignments)
_RESERVED_NETS = (ipaddress.ip_network("192.0.0.0/24"),)


class TargetError(ValueError):
    """The URL cannot be sent to; ``kind`` says why (``str(e)`` is a message for an operator)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class RefusedTarget(TargetError):
    """Not an allowed target (scheme, credentials, or an address of a refused kind)."""


class Unresolvable(TargetError):
    """The host name has no address (or the resolver did not answer in time)."""


def classify(ip: IPAddress) -> str:
    """``""`` for a public address, else its kind: ``loopback``, ``private``, ``link-local``,
    ``multicast``, ``unspecified`` or ``reserved``."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return classify(ip.ipv4_mapped)
        embedded = ip.sixtofour or (ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) if ip in _NAT64 else None)
        if embedded is not None and classify(embedded):
            return classify(embedded)
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if any(ip.version == n.version and ip in n for n in _PRIVATE_NETS):
        return "private"
    if ip.is_reserved or ip.is_private or not ip.is_global or any(ip in n for n in _RESERVED_NETS):
        return "reserved"
    return ""


def refusal(kind: str, allow_private: bool) -> str:
    """Why an address of ``kind`` is refused (``""`` when it is allowed)."""
    if not kind or (allow_private and kind in PRIVATE_KINDS):
        return ""
    if kind in PRIVATE_KINDS:
        return (f"a {kind} address; on-premises receivers need MEDIAINTEL_WEBHOOK_ALLOW_PRIVATE")
    if kind == "link-local":
        return "a link-local address (where cloud metadata lives): never allowed"
    return f"an {kind} address: never allowed" if kind[0] in "aeiou" else f"a {kind} address: never allowed"


@dataclass(frozen=True)
class Target:
    """Where one request goes: ``address`` (checked) is connected to; ``host`` is what the
    request and TLS name. ``fallbacks`` are the name's other (also checked) addresses."""

    scheme: str
    host: str
    port: int
    path: str
    address: str
    fallbacks: tuple[str, ...] = ()


def resolve(host: str, port: int, timeout_s: float) -> list[str]:
    """The addresses of ``host`` (an IP literal is its own address), waiting at most ``timeout_s``."""
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["infos"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError) as e:
            box["error"] = e

    worker = threading.Thread(target=run, name="webhook-resolve", daemon=True)
    worker.start()
    worker.join(max(timeout_s, 0.0))
    if worker.is_alive():
        raise Unresolvable("dns", f"the name {host} was not resolved within {timeout_s:g} s")
    if "error" in box or not box.get("infos"):
        raise Unresolvable("dns", f"the name {host} does not resolve")
    seen: list[str] = []
    for *_, sockaddr in box["infos"]:
        a = str(sockaddr[0])
        if a not in seen:
            seen.append(a)
    return seen


def check_url(url: str, *, allow_private: bool, resolve_timeout: float = 5.0) -> Target:
    """Parse, resolve and check ``url``; the :class:`Target` to connect to, or :class:`TargetError`."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise RefusedTarget("invalid", "the URL is not valid") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise RefusedTarget("scheme", "the URL must be http or https")
    if parts.username is not None or parts.password is not None:
        raise RefusedTarget("credentials", "credentials in the URL are not allowed (receivers check the signature)")
    host = parts.hostname or ""
    if not host:
        raise RefusedTarget("invalid", "the URL has no host")
    try:
        host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        raise RefusedTarget("invalid", "the host name is not valid") from None
    port = port or (443 if scheme == "https" else 80)
    literal = _is_literal(host)
    addresses = resolve(host, port, resolve_timeout)
    for a in addresses:
        kind = classify(ipaddress.ip_address(a.split("%")[0]))
        why = refusal(kind, allow_private)
        if why:
            raise RefusedTarget(kind, f"the host {'is' if literal else 'resolves to'} {why}")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(scheme, host, port, path, addresses[0], tuple(addresses[1:]))


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


# ------------------------------------------------------------------ one request, one deadline
class DeadlineExceeded(TimeoutError):
    pass


class _Clock:
    def __init__(self, seconds: float, start: float | None = None) -> None:
        self.end = (time.monotonic() if start is None else start) + seconds

    def left(self) -> float:
        """Seconds left (> 0), or :class:`DeadlineExceeded`."""
        left = self.end - time.monotonic()
        if left <= 0:
            raise DeadlineExceeded
        return left


class _DeadlineReader(io.RawIOBase):
    """Socket reads that all share the request's clock: every read waits at most what is left."""

    def __init__(self, sock: socket.socket, clock: _Clock) -> None:
        self._sock, self._clock = sock, clock

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        self._sock.settimeout(self._clock.left())
        return self._sock.recv_into(b)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """HTTP to ``target.address`` (never re-resolved), naming ``target.host``; all I/O on ``clock``."""

    def __init__(self, target: Target, clock: _Clock) -> None:
        super().__init__(target.host, target.port, timeout=clock.left())
        self._target, self._clock = target, clock

        class Response(http.client.HTTPResponse):
            def __init__(self, sock: socket.socket, *args: Any, **kwargs: Any) -> None:
                super().__init__(sock, *args, **kwargs)
                self.fp.close()
                self.fp = io.BufferedReader(_DeadlineReader(sock, clock))

        self.response_class = Response

    def _open(self) -> socket.socket:
        last: OSError | None = None
        for address in (self._target.address, *self._target.fallbacks):
            try:
                sock = socket.create_connection((address, self.port), timeout=self._clock.left())
            except TimeoutError:
                raise
            except OSError as e:
                last = e
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock
        assert last is not None
        raise last

    def connect(self) -> None:
        self.sock = self._open()

    def send(self, data: Any) -> None:
        if self.sock is None:
            self.connect()
        self.sock.settimeout(self._clock.left())
        super().send(data)


class _PinnedHTTPSConnection(_PinnedHTTPConnection):
    default_port = 443

    def __init__(self, target: Target, clock: _Clock, context: ssl.SSLContext) -> None:
        super().__init__(target, clock)
        self._tls = context

    def connect(self) -> None:
        raw = self._open()
        try:
            raw.settimeout(self._clock.left())  # bounds the whole handshake
            self.sock = self._tls.wrap_socket(raw, server_hostname=self.host)
        except BaseException:
            raw.close()
            raise


_default_tls: ssl.SSLContext | None = None


def _tls_context() -> ssl.SSLContext:
    global _default_tls
    if _default_tls is None:
        _default_tls = ssl.create_default_context()
    return _default_tls


@dataclass
class Attempt:
    """The outcome of one request: never anything the receiver wrote but its status code."""

    ok: bool
    status_code: int | None
    error_kind: str  # "" when ok
    error: str
    seconds: float


def post(target: Target, body: bytes, headers: dict[str, str], deadline_s: float, *,
         context: ssl.SSLContext | None = None, started: float | None = None) -> Attempt:
    """POST ``body`` to ``target``; 2xx is success. Ends by ``deadline_s`` after ``started``
    (default: now); reads the status line and headers only."""
    t0 = time.monotonic() if started is None else started
    clock = _Clock(deadline_s, t0)

    def done(ok: bool, code: int | None, kind: str, error: str) -> Attempt:
        return Attempt(ok, code, kind, error, round(time.monotonic() - t0, 3))

    conn: _PinnedHTTPConnection | None = None
    try:
        if target.scheme == "https":
            conn = _PinnedHTTPSConnection(target, clock, context or _tls_context())
        else:
            conn = _PinnedHTTPConnection(target, clock)
        conn.connect()
        conn.request("POST", target.path, body=body, headers={"Content-Length": str(len(body)), **headers})
        resp = conn.getresponse()
        code = resp.status
        resp.close()
    except TimeoutError:
        return done(False, None, "timeout", f"no answer within {deadline_s:g} s")
    except ssl.SSLCertVerificationError as e:
        return done(False, None, "tls", f"TLS certificate not valid for {target.host} "
                                        f"({(e.verify_message or 'verification failed')[:80]})")
    except ssl.SSLError as e:
        return done(False, None, "tls", f"TLS failed ({str(e.reason or type(e).__name__)[:60]})")
    except ConnectionRefusedError:
        return done(False, None, "connect", "connection refused")
    except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
        return done(False, None, "connect", "the receiver closed the connection without answering")
    except http.client.HTTPException as e:
        return done(False, None, "protocol", f"not a valid HTTP answer ({type(e).__name__})")
    except OSError as e:
        name = errno.errorcode.get(e.errno or 0, type(e).__name__)
        return done(False, None, "connect", f"connection failed ({name})")
    finally:
        if conn is not None:
            conn.close()
    if 200 <= code < 300:
        return done(True, code, "", "")
    if 300 <= code < 400:
        return done(False, code, "redirect", f"HTTP {code}: redirects are not followed")
    return done(False, code, "http_status", f"HTTP {code}")


def send(url: str, body: bytes, headers: dict[str, str], deadline_s: float, *, allow_private: bool,
         context: ssl.SSLContext | None = None) -> Attempt:
    """Check ``url`` now (DNS may have changed since it was stored) and POST to the address checked,
    all within one ``deadline_s``."""
    t0 = time.monotonic()
    try:
        target = check_url(url, allow_private=allow_private, resolve_timeout=deadline_s)
    except RefusedTarget as e:
        return Attempt(False, None, "refused_target", str(e)[:200], round(time.monotonic() - t0, 3))
    except Unresolvable as e:
        return Attempt(False, None, "dns", str(e)[:200], round(time.monotonic() - t0, 3))
    return post(target, body, headers, deadline_s, context=context, started=t0)
