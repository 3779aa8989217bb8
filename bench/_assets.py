"""Media and a platform stack for the batch and footprint benches.

Video variants are remuxes of bench/video.py's 45 s 720p clip with speech (same streams, a
distinct ``comment`` tag, so distinct bytes and sha256: the platform processes each one).
The stack is web (gunicorn ``-w 2``) + ``python -m workers --role all -c 3`` + the search worker,
as ``make run`` starts them, on the test profile's PostgreSQL (its own database) and Redis DB 5.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MEDIA = ROOT / "var" / "bench-media" / "batch"
TEXT = ("The harbour committee met on {d} to discuss footpaths, ferries and trees. Residents asked for "
        "quieter construction hours and a new playground near the water. Document number {i}.\n") * 6


def video_variants(n: int, seconds: float = 45.0) -> list[Path]:
    """``n`` copies of the speech video with distinct bytes (stream copy, a different tag each)."""
    import av

    from bench.video import make_video

    src = make_video(0, seconds)
    MEDIA.mkdir(parents=True, exist_ok=True)
    out: list[Path] = []
    for i in range(n):
        dst = MEDIA / f"news-variant-{i}.mp4"
        if not dst.exists():
            with av.open(str(src)) as inp, av.open(str(dst), "w") as o:
                o.metadata["comment"] = f"variant {i}"
                streams = {s.index: o.add_stream_from_template(s) for s in inp.streams}
                for pkt in inp.demux():
                    if pkt.dts is None:
                        continue
                    pkt.stream = streams[pkt.stream.index]
                    o.mux(pkt)
        out.append(dst)
    return out


def images(n: int) -> list[Path]:
    """``n`` 1024×768 JPEGs with a caption over different backgrounds."""
    from tests import media

    MEDIA.mkdir(parents=True, exist_ok=True)
    bgs = ["noise:{i}", "gradient", "checker:teal", "stripes", "bars"]
    out = []
    for i in range(n):
        p = MEDIA / f"image-{i}.jpg"
        if not p.exists():
            media.make_image(p, f"NOTICE {i}: HARBOUR WORKS", size=(1024, 768),
                             background=bgs[i % len(bgs)].format(i=i + 3), fmt="JPEG")
        out.append(p)
    return out


def texts(n: int) -> list[Path]:
    MEDIA.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        p = MEDIA / f"minutes-{i}.txt"
        if not p.exists():
            p.write_text(TEXT.format(i=i, d=f"day {i + 1}"))
        out.append(p)
    return out


class Stack:
    """web + worker (``--role all -c 3``) + search worker on a fresh bench database."""

    def __init__(self, extra_env: dict[str, str], concurrency: int = 3) -> None:
        from bench.video import free_port, stack_env

        self.work = Path(tempfile.mkdtemp(prefix="mi-bench-"))
        self.env = {**stack_env(self.work), **extra_env}
        self.token = self.env.pop("_TOKEN")
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.logs = self.work / "logs"
        self.logs.mkdir()
        self.concurrency = concurrency
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self) -> float:
        """Start every process; returns the monotonic start time."""
        t0 = time.monotonic()
        py = sys.executable
        cmds = {
            "web": [py, "-m", "gunicorn", "mediaintel.wsgi", "-b", f"127.0.0.1:{self.port}", "-w", "2",
                    "--timeout", "600", "--no-control-socket"],
            "worker": [py, "-m", "workers", "--role", "all", "-c", str(self.concurrency)],
            "search": [py, "-m", "workers", "--role", "search", "-c", "1", "--name", "search@%h"],
        }
        for name, cmd in cmds.items():
            self.procs[name] = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=(self.logs / f"{name}.log").open("w"),
                                                stderr=subprocess.STDOUT, start_new_session=True)
        return t0

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def web_up(self, timeout: float = 120) -> float:
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.base + "/livez", timeout=2).read()
                return time.monotonic()
            except OSError:
                time.sleep(0.05)
        raise TimeoutError("web did not come up")

    def wait_warm(self, timeout: float = 300) -> float:
        """Until every worker process logged ``engines warm`` (main processes that share, and children)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            w, s = self.log("worker"), self.log("search")
            if w.count("engines warm in pool child") >= self.concurrency and "engines warm in pool child" in s:
                return time.monotonic()
            for name, p in self.procs.items():
                if p.poll() is not None:
                    raise RuntimeError(f"{name} exited: {self.log(name)[-2000:]}")
            time.sleep(0.2)
        raise TimeoutError("workers did not warm up")

    def pids(self) -> dict[str, list[int]]:
        """Each process of the stack by role: the leader and its descendants."""
        out: dict[str, list[int]] = {}
        for name, p in self.procs.items():
            out[name] = [p.pid, *descendants(p.pid)]
        return out

    def stop(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)


def descendants(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return kids
    for c in map(int, children):
        kids += [c, *descendants(c)]
    return kids


def pss_mb(pid: int) -> tuple[float, float]:
    """(PSS, RSS) of a process in MiB, from /proc/<pid>/smaps_rollup."""
    vals = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        k, _, rest = line.partition(":")
        if k in ("Pss", "Rss"):
            vals[k] = int(rest.split()[0]) / 1024
    return vals.get("Pss", 0.0), vals.get("Rss", 0.0)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
