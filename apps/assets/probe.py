"""Probing and integrity checks of untrusted media, in a child process.

Every probe runs in its own process with an address-space and CPU limit and a wall-clock
timeout; it reads the local file only (PyAV is given a plain path, so no other protocol is
reachable) and answers one JSON object. Images are checked against the pixel limit from
their header *before* any pixel is decoded (decompression bombs).

The process is forked from a per-process *helper* (``python -m apps.assets.probe --helper
FAMILY``): started once, with the same minimal environment, it has already imported the
decoders (Pillow; PyAV and ``mediacommon.container``), so a probe no longer pays for a Python
start-up and those imports (~0.1–0.5 s, most of an upload's time for small files). Each probe
is still a fresh process: the fork sets its limits before it opens the file, writes its pid
and then its JSON answer on a socket of its own, and is killed at the timeout. Where the helper
cannot be used (``MEDIAINTEL_PROBE_PREFORK = False``, or it fails to start), the probe spawns
``python -m apps.assets.probe KIND PATH`` as before.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from apps.assets.sniff import Rejected

# The child side imports no Django (``django.conf`` alone costs ~0.1 s of every probe's start-up):
# the parent-side functions import ``settings`` when called.

ROOT = Path(__file__).resolve().parent.parent.parent
log = logging.getLogger(__name__)
# what each helper imports before it forks probes (the child then only opens the file)
# (media-reading code comes from ``mediacommon``, never ``workers.engines``: the web image has no numpy)
PRELOAD = {"image": ("PIL.Image",), "av": ("av", "mediacommon.container", "PIL.Image")}
HELPER_RETRY_S = 60.0


def _limits(memory_mb: int, cpu_s: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory_mb * 1024 * 1024,) * 2)
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _child_env(max_pixels: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in {"PATH", "LANG", "LC_ALL", "HOME"}}
    env["PYTHONPATH"] = str(ROOT)
    env["MEDIAINTEL_MAX_PIXELS"] = str(max_pixels)
    return env


def _timeout(lim: dict[str, Any]) -> Rejected:
    return Rejected(422, "probe_timeout", f"Probing took longer than {lim['probe_timeout_s']:.0f}s; "
                                          "the file is refused as unreadable.")


def probe_file(path: str | Path, kind: str) -> dict[str, Any]:
    """Probe ``path`` in a sandboxed child; raise :class:`Rejected` for corrupt or over-limit media."""
    from django.conf import settings

    lim = settings.MEDIAINTEL_LIMITS
    out = None
    if getattr(settings, "MEDIAINTEL_PROBE_PREFORK", True):
        out = _probe_forked(str(path), kind, lim)
    if out is None:
        out = _probe_spawned(str(path), kind, lim)
    if "error" in out:
        raise Rejected(out.get("status", 422), out.get("code", "corrupt"), out["error"])
    _check_limits(out, kind)
    return out


def _probe_spawned(path: str, kind: str, lim: dict[str, Any]) -> dict[str, Any]:
    """A new interpreter per probe (the fallback)."""
    try:
        r = subprocess.run(
            [sys.executable, "-m", "apps.assets.probe", kind, path],
            capture_output=True, text=True, timeout=lim["probe_timeout_s"], env=_child_env(lim["max_pixels"]),
            cwd=str(ROOT), preexec_fn=lambda: _limits(lim["probe_memory_mb"], int(lim["probe_timeout_s"]) + 1),
        )
    except subprocess.TimeoutExpired:
        raise _timeout(lim) from None
    if r.returncode != 0 or not r.stdout.strip():
        why = (r.stderr.strip().splitlines() or ["the probe process died"])[-1][:300]
        raise Rejected(422, "corrupt", f"The file could not be read: {why}")
    return json.loads(r.stdout)


class _Helper:
    """A ``--helper FAMILY`` process of this process: it forks one sandboxed child per probe.

    Requests go over a SEQPACKET socket, each with one end of a fresh socket pair (SCM_RIGHTS)
    on which the forked child writes ``<pid>\\n`` then its JSON answer; the answer is read with
    the wall-clock timeout, and a child still running then is killed. Thread-safe.
    """

    def __init__(self, family: str, max_pixels: int, ready_timeout: float = 60.0) -> None:
        self.family, self.owner, self.lock = family, os.getpid(), threading.Lock()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = {**_child_env(max_pixels), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "apps.assets.probe", "--helper", family, str(theirs.fileno())],
                env=env, cwd=str(ROOT), pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        finally:
            theirs.close()
        self.sock = ours
        try:
            ours.settimeout(ready_timeout)
            hello = ours.recv(1024)
            ours.settimeout(None)
        except OSError as e:
            self.close()
            raise OSError(f"the probe helper did not start: {e}") from None
        if hello != b"ready":
            self.close()
            raise OSError(f"the probe helper did not start: {hello.decode(errors='replace')[:300] or 'exited'}")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        self.sock.close()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def probe(self, path: str, kind: str, lim: dict[str, Any]) -> dict[str, Any]:
        request = json.dumps({"kind": kind, "path": path, "max_pixels": lim["max_pixels"],
                              "memory_mb": lim["probe_memory_mb"], "cpu_s": int(lim["probe_timeout_s"]) + 1})
        ours, theirs = socket.socketpair()
        deadline = time.monotonic() + lim["probe_timeout_s"]
        try:
            with self.lock:
                socket.send_fds(self.sock, [request.encode()], [theirs.fileno()])
            theirs.close()  # from now on only the child holds the writing end: EOF = it is gone
            buf, pid = b"", None
            while True:
                left = deadline - time.monotonic()
                try:
                    if left <= 0:
                        raise TimeoutError
                    ours.settimeout(left)
                    data = ours.recv(65536)
                except TimeoutError:
                    if pid is not None:
                        os.kill(pid, signal.SIGKILL)  # still running (no EOF yet), so the pid is still its own
                    raise _timeout(lim) from None
                if not data:
                    break
                buf += data
                if pid is None and b"\n" in buf:
                    head, buf = buf.split(b"\n", 1)
                    pid = int(head)
        finally:
            ours.close()
            theirs.close()
        if pid is not None:
            try:
                return json.loads(buf)
            except ValueError:
                pass  # no (complete) answer: the child died on the way
        raise Rejected(422, "corrupt", "The file could not be read: the probe process died")


_helpers: dict[str, _Helper] = {}
_helpers_lock = threading.Lock()
_helper_failed: dict[str, float] = {}


def _helper(family: str, max_pixels: int) -> _Helper | None:
    with _helpers_lock:
        h = _helpers.get(family)
        if h is not None and (h.owner != os.getpid() or not h.alive()):
            if h.owner == os.getpid():
                h.close()
            h = None  # a forked copy of this process starts its own helper
        if h is None:
            failed = _helper_failed.get(family)
            if failed is not None and time.monotonic() - failed < HELPER_RETRY_S:
                return None
            try:
                h = _Helper(family, max_pixels)
            except OSError as e:
                _helper_failed[family] = time.monotonic()
                log.warning("probe helper %s unavailable, spawning a process per probe: %s", family, e)
                return None
            _helpers[family] = h
        return h


def _probe_forked(path: str, kind: str, lim: dict[str, Any]) -> dict[str, Any] | None:
    """Probe in a child forked from the helper; None when the helper cannot be used."""
    family = "image" if kind == "image" else "av" if kind in ("video", "audio") else None
    if family is None:
        return None
    h = _helper(family, lim["max_pixels"])
    if h is None:
        return None
    try:
        return h.probe(path, kind, lim)
    except OSError as e:  # the helper died between two probes
        log.warning("probe helper %s failed, spawning a process instead: %s", family, e)
        with _helpers_lock:
            if _helpers.get(family) is h:
                del _helpers[family]
        h.close()
        return None


def _check_limits(info: dict[str, Any], kind: str) -> None:
    from django.conf import settings

    lim = settings.MEDIAINTEL_LIMITS
    if kind in ("video", "audio"):
        if info.get("duration") and info["duration"] > lim["max_duration_s"]:
            raise Rejected(413, "too_long", f"Duration {info['duration']:.0f}s exceeds the limit of "
                                            f"{lim['max_duration_s']:.0f}s.")
        if (info.get("frame_count") or 0) > lim["max_frames"]:
            raise Rejected(413, "too_many_frames", f"{info['frame_count']} frames exceed the limit of "
                                                   f"{lim['max_frames']}.")
    w, h = info.get("width") or 0, info.get("height") or 0
    if w * h > lim["max_pixels"]:
        raise Rejected(413, "too_many_pixels", f"{w}×{h} pixels exceed the limit of {lim['max_pixels']}.")


# ------------------------------------------------------------------ child side
def _probe_image(path: str, max_pixels: int) -> dict[str, Any]:
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None  # we enforce our own limit, from the header, before decoding
    with Image.open(path) as im:
        w, h = im.size
        frames = getattr(im, "n_frames", 1)
        if w * h > max_pixels:
            return {"error": f"{w}×{h} pixels exceed the limit of {max_pixels}.", "status": 413,
                    "code": "too_many_pixels"}
        if w * h * min(frames, 1000) > max_pixels * 10:
            return {"error": f"{frames} frames of {w}×{h} pixels exceed the decoding budget.", "status": 413,
                    "code": "too_many_pixels"}
        fmt = im.format
        im.load()  # full decode: a truncated or corrupt image fails here
        if frames > 1:
            im.seek(frames - 1)
            im.load()
    return {"width": w, "height": h, "format": fmt, "frame_count": frames}


def _probe_av(path: str) -> dict[str, Any]:
    """Container facts plus integrity, from the verifying probe the worker's ``probe`` stage runs too.

    ``probe(verify=True)`` decodes the first frame of each main stream (a valid header over an
    undecodable payload fails there) and, unless an MP4/MOV sample index proves every sample lies
    inside the file, decodes the last seconds: data that ends well before the declared duration
    marks the file truncated, and it is refused.
    """
    from mediacommon.container import probe

    info = asdict(probe(path))
    if info.get("truncated"):
        raise ValueError(f"the decodable data ends at {info.get('decoded_end') or 0:.1f}s of a declared "
                         f"{info.get('duration') or 0:.1f}s (truncated?)")
    return info


def _run(kind: str, path: str, max_pixels: int) -> dict[str, Any]:
    try:
        if kind == "image":
            out = _probe_image(path, max_pixels)
        elif kind in ("video", "audio"):
            out = _probe_av(path)
            if kind == "video" and not out.get("has_video"):
                out = {"error": "The file has no video stream.", "status": 422, "code": "no_video_stream"}
            elif kind == "audio" and not out.get("has_audio"):
                out = {"error": "The file has no audio stream.", "status": 422, "code": "no_audio_stream"}
        else:
            out = {}
    except MemoryError:
        out = {"error": "The file needs more memory to decode than allowed.", "status": 413, "code": "too_large"}
    except Exception as e:
        out = {"error": f"The file is corrupt or truncated: {type(e).__name__}: {e}"[:400], "code": "corrupt"}
    return out


def _child(kind: str, path: str) -> int:
    out = _run(kind, path, int(os.environ.get("MEDIAINTEL_MAX_PIXELS", "80000000")))
    sys.stdout.write(json.dumps(out, default=str))
    return 0


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _helper_main(family: str, fd: int) -> int:
    """Import the decoders, then fork one limited child per request until the parent goes away."""
    import importlib

    ctl = socket.socket(fileno=fd)
    try:
        for module in PRELOAD[family]:
            importlib.import_module(module)
        from PIL import Image

        Image.init()  # every format plugin, now rather than in each child
    except Exception as e:
        ctl.send(f"{type(e).__name__}: {e}".encode()[:1000])
        return 1
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    ctl.send(b"ready")
    while True:
        try:
            msg, fds, _flags, _addr = socket.recv_fds(ctl, 65536, 1)
        except OSError:
            return 0
        if not msg:
            return 0  # the parent process is gone
        if not fds:
            continue
        out = fds[0]
        try:
            req = json.loads(msg)
            pid = os.fork()
        except Exception:
            os.close(out)
            continue
        if pid == 0:  # the probe child
            try:
                ctl.close()
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                _write_all(out, f"{os.getpid()}\n".encode())
                _limits(int(req["memory_mb"]), int(req["cpu_s"]))
                result = _run(req["kind"], req["path"], int(req["max_pixels"]))
                _write_all(out, json.dumps(result, default=str).encode())
            finally:
                os._exit(0)
        os.close(out)


if __name__ == "__main__":
    if sys.argv[1] == "--helper":
        sys.exit(_helper_main(sys.argv[2], int(sys.argv[3])))
    sys.exit(_child(sys.argv[1], sys.argv[2]))
