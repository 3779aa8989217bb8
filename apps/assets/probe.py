"""Probing and integrity checks of untrusted media, in a child process.

The child runs ``python -m apps.assets.probe KIND PATH`` with an address-space and CPU limit
and a wall-clock timeout; it reads the local file only (PyAV is given a plain path, so no
other protocol is reachable) and prints one JSON object. Images are checked against the
pixel limit from their header *before* any pixel is decoded (decompression bombs).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from apps.assets.sniff import Rejected

# The child side imports no Django (``django.conf`` alone costs ~0.1 s of every probe's start-up):
# the parent-side functions import ``settings`` when called.

ROOT = Path(__file__).resolve().parent.parent.parent


def _limits(memory_mb: int, cpu_s: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory_mb * 1024 * 1024,) * 2)
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def probe_file(path: str | Path, kind: str) -> dict[str, Any]:
    """Probe ``path`` in a sandboxed child; raise :class:`Rejected` for corrupt or over-limit media."""
    from django.conf import settings

    lim = settings.MEDIAINTEL_LIMITS
    env = {k: v for k, v in os.environ.items() if k in {"PATH", "LANG", "LC_ALL", "HOME"}}
    env["PYTHONPATH"] = str(ROOT)
    env["MEDIAINTEL_MAX_PIXELS"] = str(lim["max_pixels"])
    try:
        r = subprocess.run(
            [sys.executable, "-m", "apps.assets.probe", kind, str(path)],
            capture_output=True, text=True, timeout=lim["probe_timeout_s"], env=env, cwd=str(ROOT),
            preexec_fn=lambda: _limits(lim["probe_memory_mb"], int(lim["probe_timeout_s"]) + 1),
        )
    except subprocess.TimeoutExpired:
        raise Rejected(422, "probe_timeout", f"Probing took longer than {lim['probe_timeout_s']:.0f}s; "
                                             "the file is refused as unreadable.") from None
    if r.returncode != 0 or not r.stdout.strip():
        why = (r.stderr.strip().splitlines() or ["the probe process died"])[-1][:300]
        raise Rejected(422, "corrupt", f"The file could not be read: {why}")
    out = json.loads(r.stdout)
    if "error" in out:
        raise Rejected(out.get("status", 422), out.get("code", "corrupt"), out["error"])
    _check_limits(out, kind)
    return out


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
    import av

    from workers.engines.decode import probe

    info = asdict(probe(path))
    # integrity: decode the first frames and frames near the end (a truncated file fails there)
    with av.open(path, "r") as c:
        stream = c.streams.video[0] if c.streams.video else c.streams.audio[0]
        got = 0
        for _frame in c.decode(stream):
            got += 1
            if got >= 2:
                break
        if got == 0:
            raise ValueError("no decodable frame")
        duration = info.get("duration") or 0
        if duration > 2:
            c.seek(int((duration * 0.95) / stream.time_base), stream=stream, any_frame=False, backward=True)
            tail_frames = 0
            for _frame in c.decode(stream):
                tail_frames += 1
                if tail_frames >= 1:
                    break
            if tail_frames == 0:
                raise ValueError("the end of the file cannot be decoded (truncated?)")
    return info


def _child(kind: str, path: str) -> int:
    max_pixels = int(os.environ.get("MEDIAINTEL_MAX_PIXELS", "80000000"))
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
    sys.stdout.write(json.dumps(out, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1], sys.argv[2]))
