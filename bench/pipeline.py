"""Pipeline benchmark: orchestration overhead per stage, and end-to-end throughput on real media.

Run on the test profile's stack::

    MEDIAINTEL_PROFILE=test .venv/bin/python bench/pipeline.py [--videos 20] [--quick]

What it does:

* starts the test profile's PostgreSQL/Redis if needed (``devstack.up``) and uses its **own**
  database ``mediaintel_bench`` (created with psycopg when missing, migrated with ``manage.py
  migrate`` in a subprocess; ``--fresh-db`` drops it first), its own Redis DBs (broker ``/3``,
  Celery results ``/4``, both flushed) and a temporary media root: the test suite's database and
  queues are never touched. Assets left by an earlier run are deleted before each measurement.
  Workers run with production settings (``mediaintel.settings``, ``DEBUG=0``), no beat;
* **part 1, orchestration overhead** — one worker ``python -m workers --role all -c 1`` with
  ``MEDIAINTEL_NOOP_STAGES=1`` (every stage claims, does nothing, completes):

  - *baseline*: sequential raw Celery round trips of ``mediaintel.maintenance.ping``
    (send + wait for the result through the Redis result backend);
  - *pipeline*: K small distinct text files ingested one at a time (the text plan, e.g.
    ``text_extract`` → {``language``, ``text_embed``, ``text_flags``} → ``moderate``, read from
    ``apps.pipeline.plans``); for each, the wall time from the commit of the ingest transaction to
    the asset's ``processed_at`` (status ``ready``), broken down per plan level with the StageRun
    timestamps. Per-stage cost = wall ÷ the critical path's length in levels; with ``-c 1``
    sibling stages run one after the other, so wall ÷ the stage runs on the serial path is
    reported too, and a second noop worker with ``-c 3`` runs siblings in parallel;
* **part 2, real pipeline throughput** — N short distinct videos (640×360, 9 s, three
  captioned scenes and espeak-ng speech; generated once into ``var/bench-media`` and reused)
  through the real engines, for each worker layout (default: one worker ``-c 2``, then two
  workers ``-c 1``). The workers are warmed up first (models load lazily, once per prefork
  child) by running warm-up videos until every child has run every model stage (bounded
  rounds); then all N pipelines are started back to back (the files were ingested — stored and
  probed — beforehand, with the pipeline start deferred, so the wall clock measures the
  pipeline alone) and the wall time runs until the last asset is ready;
* prints tables and writes the ``## Pipeline`` section of ``docs/benchmarks.md`` (other
  sections are kept).

The host may be shared: the load average and where the host's CPU went (the bench's workers, their
PostgreSQL backends, this process, everyone else) are recorded, and CPU-time figures (CPU per
stage run, CPU per media second, orchestration's share of the bench's CPU) are reported next to
the wall-clock ones, because they do not depend on other tenants' load.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench._report import DOC, machine, md_table, write_section  # noqa: E402

MEDIA_CACHE = ROOT / "var" / "bench-media"
DB_NAME = "mediaintel_bench"
BROKER_DB, RESULT_DB = 3, 4
PING = "mediaintel.maintenance.ping"
GOAL_STAGE_MS = 15.0  # orchestration cost per stage
GOAL_SHARE = 0.05  # orchestration ≤ 5 % of wall time on real media
#: Stages that load a model or a heavy library on first use (what warm-up must cover per child).
MODEL_STAGES = ("scenes", "transcribe", "ocr", "detect", "nsfw", "tags", "hash", "text_embed", "language",
                "text_flags", "moderate")


# ----------------------------------------------------------------------------- environment
def bench_env(work: Path) -> dict[str, str]:
    """The environment of this process and of every worker (set before ``django.setup()``)."""
    from mediaintel import devstack

    prof = devstack.profile("test")
    devstack.up(prof)  # starts what DATABASE_URL / BROKER_URL do not point elsewhere
    db = urlparse(os.environ.get("DATABASE_URL", prof.database_url))._replace(path=f"/{DB_NAME}")
    redis = urlparse(os.environ.get("BROKER_URL", prof.broker_url))
    if redis.scheme != "redis":
        redis = urlparse(prof.broker_url)
    env = {
        "MEDIAINTEL_PROFILE": "test",
        "DJANGO_SETTINGS_MODULE": "mediaintel.settings",
        "DATABASE_URL": db.geturl(),
        "BROKER_URL": redis._replace(path=f"/{BROKER_DB}").geturl(),
        "REDIS_URL": redis._replace(path=f"/{BROKER_DB}").geturl(),
        "CELERY_RESULT_BACKEND": redis._replace(path=f"/{RESULT_DB}").geturl(),
        "MEDIAINTEL_STORAGE": "local",
        "MEDIAINTEL_MEDIA_ROOT": str(work / "media"),
        "MEDIAINTEL_WORKER_CACHE": str(work / "worker-cache"),
        "MEDIAINTEL_TMP_DIR": str(work / "tmp"),
        "DEBUG": "0",
        "SECRET_KEY": "bench-pipeline-" + uuid.uuid4().hex * 2,
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }
    for d in ("media", "worker-cache", "tmp", "logs", "texts"):
        (work / d).mkdir(parents=True, exist_ok=True)
    for k in ("MEDIAINTEL_NOOP_STAGES", "MEDIAINTEL_FAULT_INJECTION", "CELERY_RESULT_BACKEND"):
        os.environ.pop(k, None)
    os.environ.update(env)
    return env


def ensure_database(env: dict[str, str], fresh: bool) -> None:
    import psycopg

    u = urlparse(env["DATABASE_URL"])
    with psycopg.connect(host=u.hostname, port=u.port, user=u.username or "postgres", password=u.password,
                         dbname="postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname=%s", (DB_NAME,)).fetchone()
        if exists and fresh:
            conn.execute(f'DROP DATABASE "{DB_NAME}" WITH (FORCE)')
            exists = None
        if not exists:
            conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env={**os.environ},
                   check=True)


def flush_redis() -> None:
    import redis

    for url in (os.environ["BROKER_URL"], os.environ["CELERY_RESULT_BACKEND"]):
        redis.Redis.from_url(url).flushdb()


def load1() -> float:
    return os.getloadavg()[0]


def host_busy() -> float:
    """CPU seconds all cores of the host have been busy since boot (/proc/stat)."""
    vals = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(vals) - vals[3] - vals[4]) / os.sysconf("SC_CLK_TCK")


def self_cpu() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def pg_backend_cpu() -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend connected to the bench database (by pid)."""
    import psutil

    out: dict[int, float] = {}
    for proc in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            title = (proc.info["cmdline"] or [""])[0]  # a backend's ps title: "postgres: user db host state"
            parts = title.split()
            if title.startswith("postgres: ") and len(parts) > 2 and parts[2] == DB_NAME:
                t = proc.cpu_times()
                out[proc.pid] = t.user + t.system
    return out


@dataclass
class Cpu:
    """Where the host's CPU went during a window: the bench's processes and everyone else's."""

    wall: float = 0.0
    busy: float = 0.0  # every process on the host
    workers: float = 0.0  # the bench's worker processes (main + pool children)
    pg: float = 0.0  # PostgreSQL backends of the bench database
    me: float = 0.0  # this process (ingest, start_pipeline, polling)

    def __iadd__(self, o: Cpu) -> Cpu:
        for f in ("wall", "busy", "workers", "pg", "me"):
            setattr(self, f, getattr(self, f) + getattr(o, f))
        return self

    @property
    def ours(self) -> float:
        return self.workers + self.pg + self.me

    def text(self) -> str:
        if not self.wall:
            return "—"
        w = self.wall
        return (f"{self.busy / w:.1f} of {os.cpu_count()} cores busy: bench workers {self.workers / w:.2f}, "
                f"their PostgreSQL {self.pg / w:.2f}, bench process {self.me / w:.2f}, "
                f"other tenants {max(0.0, self.busy - self.ours) / w:.2f}")


@contextlib.contextmanager
def cpu_meter(ws: Callable[[], list[Worker]]) -> Iterator[Cpu]:
    c = Cpu()
    t, busy, me, pg = time.monotonic(), host_busy(), self_cpu(), pg_backend_cpu()
    wk = sum(w.cpu_seconds() for w in ws())
    yield c
    c.wall, c.busy, c.me = time.monotonic() - t, host_busy() - busy, self_cpu() - me
    c.workers = sum(w.cpu_seconds() for w in ws()) - wk
    c.pg = sum(v - pg.get(pid, 0.0) for pid, v in pg_backend_cpu().items())


# ----------------------------------------------------------------------------- workers
class Worker:
    """A ``python -m workers`` subprocess in its own process group (killed with its children)."""

    live: list[Worker] = []

    def __init__(self, name: str, concurrency: int, env: dict[str, str], logdir: Path) -> None:
        self.name, self.concurrency, self.env = name, concurrency, env
        self.log = logdir / f"worker-{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Worker:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "workers", "--role", "all", "-c", str(self.concurrency),
                 "--name", f"{self.name}@%h"],
                cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        Worker.live.append(self)
        return self

    def wait_ready(self, timeout: float = 180.0) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker {self.name} exited:\n{self.log.read_text(errors='replace')[-3000:]}")
            if " ready." in self.log.read_text(errors="replace"):
                return
            time.sleep(0.2)
        raise RuntimeError(f"worker {self.name} not ready:\n{self.log.read_text(errors='replace')[-3000:]}")

    def children(self) -> list[int]:
        import psutil

        assert self.proc is not None
        return [c.pid for c in psutil.Process(self.proc.pid).children()]

    def cpu_seconds(self) -> float:
        """User + system CPU of the worker and its live children so far."""
        import psutil

        assert self.proc is not None
        root = psutil.Process(self.proc.pid)
        total = 0.0
        for proc in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                t = proc.cpu_times()
                total += t.user + t.system
        return total

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        with contextlib.suppress(ValueError):
            Worker.live.remove(self)

    @classmethod
    def stop_all(cls) -> None:
        for w in list(cls.live):
            w.stop()


@contextlib.contextmanager
def workers(specs: list[int], env: dict[str, str], logdir: Path, tag: str) -> Iterator[list[Worker]]:
    started = [Worker(f"{tag}{i}", c, env, logdir).start() for i, c in enumerate(specs)]
    try:
        for w in started:
            w.wait_ready()
        yield started
    finally:
        for w in started:
            w.stop()


# ----------------------------------------------------------------------------- DB helpers
def ts(d: Any) -> float | None:
    return d.timestamp() if d is not None else None


def clear_library(work: Path) -> None:
    """Delete every asset of the bench database (cascades to jobs, stage runs, insights) and its blobs."""
    from apps.assets.models import MediaAsset

    MediaAsset.objects.all().delete()
    shutil.rmtree(work / "media", ignore_errors=True)
    (work / "media").mkdir()


@contextlib.contextmanager
def pipeline_start_hook(marks: dict[Any, tuple[float, float]], defer: bool = False) -> Iterator[None]:
    """Time the on-commit ``start_pipeline`` of each ingest (commit → returned), or skip it (``defer``).

    Replaces ``apps.assets.services._start_pipeline_on_commit`` in this process only; the
    callback does exactly what the original does, timed.
    """
    from django.db import transaction

    from apps.assets import services as asset_services

    original = asset_services._start_pipeline_on_commit

    def hook(asset: Any) -> None:
        if defer:
            return

        def go() -> None:
            from apps.pipeline.services import start_pipeline

            t0 = time.time()
            start_pipeline(asset.pk)
            marks[asset.pk] = (t0, time.time())

        transaction.on_commit(go)

    asset_services._start_pipeline_on_commit = hook
    try:
        yield
    finally:
        asset_services._start_pipeline_on_commit = original


def wait_jobs(job_ids: list[Any], timeout: float, every: float = 0.25) -> None:
    from apps.pipeline.models import Job, JobStatus

    deadline = time.monotonic() + timeout
    while Job.objects.filter(pk__in=job_ids, status=JobStatus.RUNNING).exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"jobs still running after {timeout:.0f}s")
        if not any(w.proc is not None and w.proc.poll() is None for w in Worker.live):
            raise RuntimeError("every worker exited")
        time.sleep(every)


# ----------------------------------------------------------------------------- statistics
def pct(xs: list[float], q: float) -> float:
    if not xs:
        return math.nan
    s = sorted(xs)
    k = (len(s) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def ms(x: float) -> str:
    return "—" if x is None or math.isnan(x) else f"{x * 1000:.1f}"


@dataclass
class Dist:
    values: list[float] = field(default_factory=list)
    cpu: float = 0.0  # worker CPU seconds spent on these samples, when measured

    def add(self, v: float | None) -> None:
        if v is not None:
            self.values.append(v)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values) if self.values else math.nan

    @property
    def p50(self) -> float:
        return pct(self.values, 0.5)

    @property
    def p95(self) -> float:
        return pct(self.values, 0.95)


# ----------------------------------------------------------------------------- part 1
def share(total: int, parts: int, i: int) -> int:
    """Block ``i`` of ``total`` items split into ``parts`` nearly equal blocks."""
    return total // parts + (1 if i < total % parts else 0)


def ping_warmup(n: int = 20) -> None:
    from mediaintel.celery import app

    for i in range(n):
        app.send_task(PING, args=[f"warm-{i}"]).get(timeout=30)


def ping_baseline(n: int) -> Dist:
    from mediaintel.celery import app

    d = Dist()
    with cpu_meter(lambda: Worker.live[-1:]) as cpu:
        for i in range(n):
            t = time.perf_counter()
            got = app.send_task(PING, args=[f"p{i}"]).get(timeout=30)
            d.add(time.perf_counter() - t)
            if got != f"p{i}":
                raise RuntimeError(f"ping returned {got!r}")
    d.cpu = cpu.workers
    return d


TEXT = """Bench note {nonce} number {i}

The ferry leaves the harbour at {h} o'clock; passengers for the island wait at gate {g}.
Volunteers count the boats and write the numbers into the log book before noon.
"""


def plan_levels(kind: str) -> list[list[str]]:
    """The plan's stages by depth (longest chain of needs): level 0 has no needs."""
    from apps.pipeline.plans import plan_for

    depth: dict[str, int] = {}
    for st in plan_for(kind):  # listed in topological order
        depth[st.name] = 1 + max((depth[n] for n in st.needs), default=-1)
    return [[n for n, d in depth.items() if d == lvl] for lvl in range(max(depth.values()) + 1)]


def plan_text(kind: str) -> str:
    return " → ".join(lvl[0] if len(lvl) == 1 else "{" + ", ".join(lvl) + "}" for lvl in plan_levels(kind))


@dataclass
class NoopResult:
    concurrency: int
    k: int
    levels: list[list[str]] = field(default_factory=lambda: plan_levels("text"))
    wall: Dist = field(default_factory=Dist)  # commit → processed_at
    start_call: Dist = field(default_factory=Dist)  # on-commit start_pipeline in the ingesting process
    parts: dict[str, Dist] = field(default_factory=lambda: defaultdict(Dist))
    statuses: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    cpu: Cpu = field(default_factory=Cpu)  # while the measured pipelines ran
    cpu_runs: int = 0  # stage runs in that window

    def merge(self, other: NoopResult) -> None:
        self.k += other.k
        self.cpu += other.cpu
        self.cpu_runs += other.cpu_runs
        self.wall.values += other.wall.values
        self.start_call.values += other.start_call.values
        for lbl, d in other.parts.items():
            self.parts[lbl].values += d.values
        for st, n in other.statuses.items():
            self.statuses[st] += n

    @property
    def n_levels(self) -> int:
        return len(self.levels)

    @property
    def serial_runs(self) -> int:
        """Stage runs one after the other on the serial path: each level in ⌈width / c⌉ waves."""
        return sum(math.ceil(len(lvl) / self.concurrency) for lvl in self.levels)


def level_label(i: int, names: list[str]) -> str:
    return f"L{i} {names[0] if len(names) == 1 else '{' + ', '.join(names) + '}'}"


def noop_pipeline(k: int, concurrency: int, work: Path, warm: int = 3, worker: Worker | None = None) -> NoopResult:
    from apps.assets.models import MediaAsset, Status
    from apps.assets.services import ingest_local_file
    from apps.pipeline.models import StageRun

    nonce = uuid.uuid4().hex[:10]
    marks: dict[Any, tuple[float, float]] = {}
    res = NoopResult(concurrency, k)

    def one(i: int) -> Any:
        p = work / "texts" / f"note-c{concurrency}-{i:03d}.txt"
        p.write_text(TEXT.format(nonce=nonce, i=i, h=i % 12 + 1, g=i % 7 + 1))
        ing = ingest_local_file(p, title=f"bench note {i}")
        if ing.duplicate:
            raise RuntimeError(f"{p.name} was a duplicate: the bench library was not empty")
        pk = ing.asset.pk
        deadline = time.monotonic() + 30
        while True:
            st = MediaAsset.objects.filter(pk=pk).values_list("status", flat=True).get()
            if st in (Status.READY, Status.FAILED):
                return pk
            if time.monotonic() > deadline:
                raise RuntimeError(f"text asset {pk} not ready after 30 s (status {st})")
            time.sleep(0.02)  # the end time is processed_at: the poll rate only paces the loop

    with pipeline_start_hook(marks):
        for i in range(warm):
            one(i)
        with cpu_meter(lambda: [worker] if worker else []) as res.cpu:
            measured = [one(i) for i in range(warm, warm + k)]
    res.cpu_runs = StageRun.objects.filter(asset_id__in=measured).count()
    level_of = {name: i for i, lvl in enumerate(res.levels) for name in lvl}
    for pk in measured:
        asset = MediaAsset.objects.get(pk=pk)
        runs = {r.stage: r for r in StageRun.objects.filter(asset_id=pk, current=True)}
        for r in runs.values():
            res.statuses[r.status] += 1
        t_commit, t_returned = marks[pk]
        done = ts(asset.processed_at)
        res.wall.add(done - t_commit)
        res.start_call.add(t_returned - t_commit)
        finished = sorted(ts(r.finished_at) for r in runs.values() if r.finished_at)
        for r in runs.values():
            if not (r.queued_at and r.started_at and r.finished_at):
                continue
            lbl = level_label(level_of[r.stage], res.levels[level_of[r.stage]])
            q, s, f = ts(r.queued_at), ts(r.started_at), ts(r.finished_at)
            needs = [runs[n] for n in r.needs if n in runs and runs[n].finished_at]
            ready = max((ts(n.finished_at) for n in needs), default=t_commit)
            # one slot (c=1): a stage waits for the one before it to finish, which is not overhead
            free = max([q, *(x for x in finished if x <= s)]) if concurrency == 1 else q
            res.parts[f"{lbl}: ready → queued (dispatch)"].add(q - ready)
            res.parts[f"{lbl}: queued/slot free → started (pickup)"].add(s - free)
            res.parts[f"{lbl}: started → finished (claim, noop, complete)"].add(f - s)
        res.parts["last stage finished → asset ready (finish)"].add(done - finished[-1])
    return res


# ----------------------------------------------------------------------------- part 2: media
SCENE_PATTERNS = ["noise", "checker", "stripes", "gradient", "bars"]
COLOURS = ["#1f4e79", "#7a1f1f", "#1f6b3a", "#6b4f1f", "#4b1f6b", "#1f6b6b", "#6b1f4f", "#3a3a3a", "#8a5a00",
           "#005a8a"]
PLACES = ["harbour", "lighthouse", "market", "station", "museum", "bridge", "library", "garden", "stadium",
          "airport", "castle", "bakery"]
THINGS = ["boats", "lanterns", "bicycles", "trains", "paintings", "umbrellas", "concerts", "ferries", "tickets",
          "parcels", "flowers", "kites"]


def video_spec(i: int) -> dict[str, Any]:
    place, things = PLACES[i % len(PLACES)], THINGS[(i * 5) % len(THINGS)]
    hour = i % 9 + 1
    speech = (f"Announcement number {i + 1}. The {place} opens at {hour} o'clock today. "
              f"Please collect your {things} at the north entrance and keep the path clear for visitors.")
    scenes = []
    for s in range(3):
        pat = SCENE_PATTERNS[(i + s) % len(SCENE_PATTERNS)]
        colour = COLOURS[(i * 3 + s) % len(COLOURS)]
        scenes.append(f"noise:{i * 3 + s}" if pat == "noise" else
                      f"{pat}:{colour}" if pat in ("checker", "stripes", "gradient") else
                      colour if s == 1 else pat)
    captions = [f"{place.upper()} {i + 1:02d}", f"OPENS {hour} O'CLOCK", f"COLLECT {things.upper()}"]
    return {"speech": speech, "scenes": scenes, "captions": captions}


def make_bench_video(path: Path, i: int, size: tuple[int, int], seconds: float) -> Path:
    from tests import media

    spec = video_spec(i)
    per = seconds / 3
    with tempfile.TemporaryDirectory() as d:
        wav = media.make_speech_wav(Path(d) / "speech.wav", spec["speech"], "en-us", speed=150,
                                    sample_rate=16000) if media.have_espeak() else None
        overlays = [media.TextOverlay(c, s * per, (s + 1) * per, font_size=max(18, size[1] // 12))
                    for s, c in enumerate(spec["captions"])]
        tmp = path.with_suffix(".part.mp4")
        media.make_video(tmp, [(p, per) for p in spec["scenes"]], size=size, fps=25, text_overlays=overlays,
                         audio_wav=wav, preset="veryfast", crf=26)
        os.replace(tmp, path)
    return path


def bench_videos(n: int, warm: int, size: tuple[int, int], seconds: float) -> tuple[list[Path], list[Path]]:
    """``n`` measured and ``warm`` warm-up videos (all distinct), generated once and reused."""
    d = MEDIA_CACHE / f"v1-{size[0]}x{size[1]}-{seconds:g}s"
    d.mkdir(parents=True, exist_ok=True)
    t, made = time.perf_counter(), 0
    out: list[Path] = []
    for i in range(n + warm):
        p = d / f"video-{i:03d}.mp4"
        if not p.exists():
            make_bench_video(p, i, size, seconds)
            made += 1
        out.append(p)
    if made:
        print(f"generated {made} videos in {d.relative_to(ROOT)} in {time.perf_counter() - t:.1f}s", flush=True)
    # the last `warm` are the warm-up set, so the measured set stays the same for any --warm
    return out[:n], out[n:]


# ----------------------------------------------------------------------------- part 2: run
@dataclass
class RealResult:
    label: str
    specs: list[int]
    n: int
    wall: float = math.nan
    ready: int = 0
    failed: int = 0
    media_seconds: float = 0.0
    stage_runs: int = 0
    stage_status: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    run_sum: float = 0.0  # Σ started→finished
    per_stage: dict[str, Dist] = field(default_factory=lambda: defaultdict(Dist))
    per_stage_wait: dict[str, Dist] = field(default_factory=lambda: defaultdict(Dist))
    dispatch: Dist = field(default_factory=Dist)  # per releasing stage: finished → last successor queued
    finish: Dist = field(default_factory=Dist)  # per asset: last stage finished → processed_at
    warm_rounds: int = 0
    warm_missing: list[str] = field(default_factory=list)
    warm_seconds: float = 0.0
    ingest_seconds: float = 0.0
    load_before: float = 0.0
    load_after: float = 0.0
    cpu: Cpu = field(default_factory=Cpu)
    latency: Dist = field(default_factory=Dist)  # per video: all started → its processed_at
    errors: list[str] = field(default_factory=list)

    @property
    def slots(self) -> int:
        return sum(self.specs)


def stage_workers(asset_ids: list[Any]) -> set[tuple[int, str]]:
    """(child pid, stage) pairs that ran stages of these assets (``worker`` is ``host:pid``)."""
    from apps.pipeline.models import StageRun

    seen = set()
    for worker, stage in StageRun.objects.filter(asset_id__in=asset_ids).values_list("worker", "stage"):
        with contextlib.suppress(ValueError, IndexError):
            seen.add((int(worker.rsplit(":", 1)[1]), stage))
    return seen


def cold(seen: set[tuple[int, str]], children: list[int]) -> list[str]:
    from apps.pipeline.plans import plan_for

    stages = [st.name for st in plan_for("video") if st.name in MODEL_STAGES]
    return [f"{pid}:{s}" for pid in children for s in stages if (pid, s) not in seen]


def real_pipeline(label: str, specs: list[int], videos: list[Path], warm_videos: list[Path], env: dict[str, str],
                  work: Path, warm_rounds: int, timeout: float) -> RealResult:
    from apps.assets.models import MediaAsset, Status
    from apps.assets.services import ingest_local_file
    from apps.pipeline.models import StageRun
    from apps.pipeline.services import start_pipeline

    res = RealResult(label, specs, len(videos))
    clear_library(work)
    flush_redis()
    with workers(specs, env, work / "logs", tag=f"real{len(specs)}x") as ws:
        children = [pid for w in ws for pid in w.children()]
        t = time.perf_counter()
        with pipeline_start_hook({}, defer=True):  # store + probe now, start the pipelines later
            measured = [ingest_local_file(p).asset.pk for p in videos]
            warm_ids = [ingest_local_file(p).asset.pk for p in warm_videos]
        res.ingest_seconds = time.perf_counter() - t
        res.media_seconds = sum(MediaAsset.objects.filter(pk__in=measured).values_list("duration", flat=True))

        t = time.perf_counter()
        jobs = [start_pipeline(pk) for pk in warm_ids]
        wait_jobs([j.pk for j in jobs if j], timeout)
        res.warm_rounds = 1
        seen = stage_workers(warm_ids)  # a forced re-run reuses the StageRun rows: accumulate here
        res.warm_missing = cold(seen, children)
        while res.warm_missing and res.warm_rounds < warm_rounds:
            jobs = [start_pipeline(pk, reason="warmup", force=True) for pk in warm_ids]
            wait_jobs([j.pk for j in jobs if j], timeout)
            res.warm_rounds += 1
            seen |= stage_workers(warm_ids)
            res.warm_missing = cold(seen, children)
        res.warm_seconds = time.perf_counter() - t
        print(f"  {label}: warmed up in {res.warm_seconds:.1f}s, {res.warm_rounds} round(s)"
              + (f"; children never ran: {', '.join(res.warm_missing)}" if res.warm_missing else ""), flush=True)

        res.load_before = load1()
        with cpu_meter(lambda: ws) as res.cpu:
            t0 = time.time()
            jobs = [start_pipeline(pk) for pk in measured]
            wait_jobs([j.pk for j in jobs if j], timeout)
        res.load_after = load1()

    assets = list(MediaAsset.objects.filter(pk__in=measured).values("pk", "status", "processed_at"))
    res.ready = sum(a["status"] == Status.READY for a in assets)
    res.failed = sum(a["status"] == Status.FAILED for a in assets)
    res.wall = max(ts(a["processed_at"]) for a in assets) - t0
    res.latency.values = [ts(a["processed_at"]) - t0 for a in assets]
    runs = list(StageRun.objects.filter(asset_id__in=measured, current=True))
    by_asset: dict[Any, dict[str, Any]] = defaultdict(dict)
    for r in runs:
        by_asset[r.asset_id][r.stage] = r
    windows: dict[int, float] = {}
    for r in runs:
        res.stage_runs += 1
        res.stage_status[r.status] += 1
        if r.error_message:
            res.errors.append(f"{r.stage}: {r.error_class}: {r.error_message[:160]}")
        if r.run_seconds is not None:
            res.run_sum += r.run_seconds
            res.per_stage[r.stage].add(r.run_seconds)
        if r.queued_at and r.started_at:
            res.per_stage_wait[r.stage].add((r.started_at - r.queued_at).total_seconds())
        needs = [by_asset[r.asset_id].get(n) for n in r.needs]
        needs = [n for n in needs if n is not None and n.finished_at is not None]
        if r.queued_at and needs:  # queued by the worker that finished its last need, right after it
            rel = max(needs, key=lambda n: n.finished_at)
            windows[rel.pk] = max(windows.get(rel.pk, 0.0), (r.queued_at - rel.finished_at).total_seconds())
    res.dispatch.values = list(windows.values())
    for a in assets:
        last = max((ts(r.finished_at) for r in by_asset[a["pk"]].values() if r.finished_at), default=None)
        if last is not None and a["processed_at"] is not None:
            res.finish.add(ts(a["processed_at"]) - last)
    return res


# ----------------------------------------------------------------------------- report
def print_table(title: str, rows: list[tuple[str, ...]]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title, title_justify="left")
    for i, h in enumerate(rows[0]):
        t.add_column(h, justify="left" if i == 0 else "right")
    for r in rows[1:]:
        t.add_row(*r)
    Console(width=150).print(t)


def part1_tables(ping: Dist, noop: list[NoopResult]) -> tuple[list[tuple[str, ...]], list[tuple[str, ...]]]:
    rows = [("measure", "n", "p50 ms", "mean ms", "p95 ms", f"goal ≤ {GOAL_STAGE_MS:g} ms")]
    rows.append(("raw Celery round trip (ping → result)", str(len(ping.values)), ms(ping.p50), ms(ping.mean),
                 ms(ping.p95), "baseline"))
    for r in noop:
        c = f"c={r.concurrency}"
        rows.append((f"text pipeline, commit → ready ({c})", str(len(r.wall.values)), ms(r.wall.p50),
                     ms(r.wall.mean), ms(r.wall.p95), ""))
        divisors = [(r.n_levels, f"÷ {r.n_levels} levels")]
        if r.serial_runs != r.n_levels:
            divisors.append((r.serial_runs, f"÷ {r.serial_runs} serial stage runs"))
        for div, what in divisors:
            per = Dist([v / div for v in r.wall.values])
            verdict = "met" if per.p50 * 1000 <= GOAL_STAGE_MS else "not met"
            ratio = per.p50 / ping.p50 if ping.values else math.nan
            rows.append((f"  per stage ({c}, {what})", str(len(per.values)), ms(per.p50), ms(per.mean),
                         ms(per.p95), f"{verdict} ({ratio:.1f}× ping)"))
    rows.append(("worker CPU per ping (user+sys, main + child)", str(len(ping.values)), "",
                 ms(ping.cpu / len(ping.values)) if ping.values else "—", "", "baseline (CPU)"))
    for r in noop:
        if r.cpu_runs:
            per = (r.cpu.workers + r.cpu.pg) / r.cpu_runs
            rows.append((f"CPU per stage run (c={r.concurrency}): worker + PostgreSQL", str(r.cpu_runs), "", ms(per),
                         "", f"worker {ms(r.cpu.workers / r.cpu_runs)} + PG {ms(r.cpu.pg / r.cpu_runs)}"))
    brk = [("component (StageRun timestamps)", *(f"c={r.concurrency} p50 ms" for r in noop),
            *(f"c={r.concurrency} mean ms" for r in noop))]
    order = ("(dispatch)", "(pickup)", "complete)", "(finish)")
    labels = sorted(dict.fromkeys(lbl for r in noop for lbl in r.parts),
                    key=lambda x: (not x.startswith("L"), x.split(" ", 1)[0],
                                   next((i for i, o in enumerate(order) if x.endswith(o)), 9)))
    extra = [("start_pipeline call on commit (web side, whole)", [r.start_call for r in noop])]
    for lbl in labels:
        ds = [r.parts.get(lbl, Dist()) for r in noop]
        brk.append((lbl, *(ms(d.p50) for d in ds), *(ms(d.mean) for d in ds)))
    for lbl, ds in extra:
        brk.append((lbl, *(ms(d.p50) for d in ds), *(ms(d.mean) for d in ds)))
    return rows, brk


def stage_cpu(noop: list[NoopResult]) -> float:
    """CPU seconds (worker + PostgreSQL) one stage run costs in orchestration, from the c=1 noop run."""
    r = next((r for r in noop if r.concurrency == 1 and r.cpu_runs), None)
    return (r.cpu.workers + r.cpu.pg) / r.cpu_runs if r else math.nan


def headline_stage_ms(noop: list[NoopResult]) -> float:
    """Per-stage orchestration cost used for part 2: the c=1 wall per serial stage run (p50)."""
    r = next((r for r in noop if r.concurrency == 1), noop[0] if noop else None)
    return r.wall.p50 / r.serial_runs if r and r.wall.values else math.nan


def threads(specs: list[int]) -> tuple[str, int]:
    """What ``python -m workers`` gives each pool child: cores ÷ its own concurrency (MEDIAINTEL_THREADS_PER_CHILD)."""
    cores = os.cpu_count() or 1
    per = [int(os.environ.get("MEDIAINTEL_THREADS_PER_CHILD") or max(1, cores // c)) for c in specs]
    return "/".join(str(x) for x in sorted(set(per))), sum(t * c for t, c in zip(per, specs, strict=True))


def verdict(share: float) -> str:
    return "met" if share <= GOAL_SHARE else "not met"


def part2_tables(results: list[RealResult], stage_cost: float, cpu_cost: float = math.nan
                 ) -> tuple[list[tuple[str, ...]], list[tuple[str, ...]]]:
    rows = [("workers", *(r.label for r in results))]

    def measured(r: RealResult) -> float:
        return sum(r.dispatch.values) + sum(r.finish.values)

    def row(name: str, f: Callable[[RealResult], str]) -> None:
        rows.append((name, *(f(r) for r in results)))

    row("videos (ready / failed)", lambda r: f"{r.n} ({r.ready} / {r.failed})")
    row("compute threads per child (total)", lambda r: f"{threads(r.specs)[0]} ({threads(r.specs)[1]})")
    row("media seconds", lambda r: f"{r.media_seconds:.0f}")
    row("wall s (all started → last ready)", lambda r: f"{r.wall:.1f}")
    row("videos / min", lambda r: f"{r.n / r.wall * 60:.2f}")
    row("per video: started → ready, p50 / min s", lambda r: f"{r.latency.p50:.0f} / {min(r.latency.values):.0f}")
    row("media s per wall s", lambda r: f"{r.media_seconds / r.wall:.3f}")
    row("stage runs (done/skipped/dead)", lambda r: f"{r.stage_runs} ({r.stage_status.get('done', 0)}/"
        f"{r.stage_status.get('skipped', 0)}/{r.stage_status.get('dead', 0)})")
    row("Σ stage run s (started→finished)", lambda r: f"{r.run_sum:.1f}")
    row("Σ run ÷ wall (≈ busy slots)", lambda r: f"{r.run_sum / r.wall:.2f} of {r.slots}")
    if not math.isnan(stage_cost):
        row(f"estimate: stage runs × {ms(stage_cost)} ms (part 1)", lambda r: f"{r.stage_runs * stage_cost:.2f} s")
        row("  as % of wall, charged serially (counts every slot's runs against one clock)",
            lambda r: f"{r.stage_runs * stage_cost / r.wall:.2%}")
        row(f"  as % of slot time (wall × slots; goal ≤ {GOAL_SHARE:.0%})",
            lambda r: f"{r.stage_runs * stage_cost / (r.wall * r.slots):.2%} "
                      f"({verdict(r.stage_runs * stage_cost / (r.wall * r.slots))})")
    row("measured: dispatch after a stage, p50 / p95 ms", lambda r: f"{ms(r.dispatch.p50)} / {ms(r.dispatch.p95)}")
    row("measured: Σ dispatch + Σ finish (slot time) s",
        lambda r: f"{sum(r.dispatch.values):.2f} + {sum(r.finish.values):.2f}")
    row(f"  as % of wall (goal ≤ {GOAL_SHARE:.0%})",
        lambda r: f"{measured(r) / r.wall:.2%} ({verdict(measured(r) / r.wall)})")
    row("  as % of slot time (wall × slots)", lambda r: f"{measured(r) / (r.wall * r.slots):.2%}")
    row(f"upper bound: slot time outside stage runs, 1 − Σrun ÷ (wall × slots) (goal ≤ {GOAL_SHARE:.0%})",
        lambda r: f"{1 - r.run_sum / (r.wall * r.slots):.1%} ({verdict(1 - r.run_sum / (r.wall * r.slots))})")
    row("bench CPU s per media s (workers + PG + bench)", lambda r: f"{r.cpu.ours / r.media_seconds:.2f}")
    row(f"projected on {os.cpu_count()} dedicated cores: media s / wall s",
        lambda r: f"{(os.cpu_count() or 1) * r.media_seconds / r.cpu.ours:.2f}" if r.cpu.ours else "—")
    if not math.isnan(cpu_cost):
        row(f"CPU estimate: stage runs × {ms(cpu_cost)} ms CPU (part 1)",
            lambda r: f"{r.stage_runs * cpu_cost:.2f} s")
        row(f"  as % of bench CPU (goal ≤ {GOAL_SHARE:.0%})",
            lambda r: f"{r.stage_runs * cpu_cost / r.cpu.ours:.2%} ({verdict(r.stage_runs * cpu_cost / r.cpu.ours)})"
            if r.cpu.ours else "—")
    row("warm-up (rounds, s)", lambda r: f"{r.warm_rounds}, {r.warm_seconds:.0f}"
        + (f" ({len(r.warm_missing)} child×stage cold)" if r.warm_missing else ""))
    row("load avg 1 min (start → end)", lambda r: f"{r.load_before:.1f} → {r.load_after:.1f}")
    row("host CPU during the run", lambda r: r.cpu.text())
    stages = list(dict.fromkeys(s for r in results for s in r.per_stage))
    srows = [("stage", *(f"{r.label} mean run s" for r in results), *(f"{r.label} p50 wait s" for r in results))]
    for s in sorted(stages, key=lambda s: -max(r.per_stage[s].mean if s in r.per_stage else 0 for r in results)):
        srows.append((s, *(f"{r.per_stage[s].mean:.2f}" if s in r.per_stage else "—" for r in results),
                      *(f"{r.per_stage_wait[s].p50:.2f}" if s in r.per_stage_wait else "—" for r in results)))
    return rows, srows


# ----------------------------------------------------------------------------- main
def n_video_stages() -> int:
    from apps.pipeline.plans import plan_for

    return len(plan_for("video"))


def parse_specs(text: str) -> list[list[int]]:
    """``"2,1+1"`` → [[2], [1, 1]]: one worker -c 2, then two workers -c 1."""
    return [[int(c) for c in part.split("+")] for part in text.split(",") if part.strip()]


def spec_label(spec: list[int]) -> str:
    counts: dict[int, int] = defaultdict(int)
    for c in spec:
        counts[c] += 1
    return " + ".join(f"{n}× -c {c}" for c, n in counts.items())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--videos", type=int, default=20)
    ap.add_argument("--texts", type=int, default=30, help="text assets for the orchestration measurement")
    ap.add_argument("--pings", type=int, default=200)
    ap.add_argument("--blocks", type=int, default=5, help="part 1: pings and text pipelines interleaved in blocks")
    ap.add_argument("--noop-concurrency", default="1,3", help="noop worker concurrencies to measure (c=1 first)")
    ap.add_argument("--workers", default="2,1+1", help="real worker layouts: '2' = one worker -c 2, '1+1' = two -c 1")
    ap.add_argument("--size", default="640x360")
    ap.add_argument("--seconds", type=float, default=9.0)
    ap.add_argument("--warm-rounds", type=int, default=3, help="max warm-up rounds per layout")
    ap.add_argument("--timeout", type=float, default=1800.0, help="per run, seconds")
    ap.add_argument("--quick", action="store_true", help="fewer items: a fast sanity run")
    ap.add_argument("--skip-part1", action="store_true")
    ap.add_argument("--skip-part2", action="store_true")
    ap.add_argument("--fresh-db", action="store_true", help=f"drop and recreate {DB_NAME} first")
    ap.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (blobs, worker logs)")
    a = ap.parse_args(argv)
    if a.quick:
        a.videos, a.texts, a.pings, a.workers, a.warm_rounds, a.blocks = min(a.videos, 3), 8, 50, "2", 1, 2
        a.noop_concurrency = "1"
    size = tuple(int(x) for x in a.size.lower().split("x"))
    m = machine()  # commit and date as the run starts (the tree may move while it runs)
    noop_cs = [int(c) for c in a.noop_concurrency.split(",")]

    lock = (MEDIA_CACHE.parent / ".bench-pipeline.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock_f = lock.open("w")
    try:
        fcntl.flock(lock_f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print("another bench/pipeline.py run holds var/.bench-pipeline.lock", file=sys.stderr)
        return 2

    def on_term(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    work = Path(tempfile.mkdtemp(prefix="mi-bench-pipeline-"))
    try:
        env = bench_env(work)
        t = time.perf_counter()
        ensure_database(env, a.fresh_db)
        print(f"database {DB_NAME} ready in {time.perf_counter() - t:.1f}s; work dir {work}", flush=True)

        import django

        django.setup()
        from django.db import connection

        clear_library(work)
        flush_redis()
        ping = Dist()
        noop: list[NoopResult] = []
        loads: dict[str, tuple[float, float]] = {}
        part1_host = Cpu()
        if not a.skip_part1:
            l0 = load1()
            noop_env = {**env, "MEDIAINTEL_NOOP_STAGES": "1"}
            for c in noop_cs:
                with workers([c], noop_env, work / "logs", tag=f"noop-c{c}-") as (w,), \
                        cpu_meter(lambda w=w: [w]) as hs:
                    if c == noop_cs[0]:
                        print(f"part 1: {a.pings} pings interleaved with {a.texts} text pipelines "
                              f"({a.blocks} blocks), noop worker -c {c} …", flush=True)
                        ping_warmup()
                        r = NoopResult(c, 0)
                        for b in range(a.blocks):
                            block = ping_baseline(share(a.pings, a.blocks, b))
                            ping.values += block.values
                            ping.cpu += block.cpu
                            r.merge(noop_pipeline(share(a.texts, a.blocks, b), c, work, warm=3 if b == 0 else 0,
                                                  worker=w))
                    else:
                        print(f"part 1: {a.texts} text pipelines, noop worker -c {c} …", flush=True)
                        r = noop_pipeline(a.texts, c, work, worker=w)
                    noop.append(r)
                part1_host += hs
                clear_library(work)
                flush_redis()
            loads["part 1"] = (l0, load1())
            rows, brk = part1_tables(ping, noop)
            print_table("Part 1 — orchestration overhead (noop stages)", rows)
            print_table("Part 1 — where a text pipeline's time goes", brk)
        stage_cost = headline_stage_ms(noop) if noop else math.nan

        real: list[RealResult] = []
        if not a.skip_part2:
            slots = max(sum(s) for s in parse_specs(a.workers))
            videos, warm_videos = bench_videos(a.videos, slots, size, a.seconds)
            for spec in parse_specs(a.workers):
                label = spec_label(spec)
                print(f"part 2: {len(videos)} videos, workers {label} …", flush=True)
                real.append(real_pipeline(label, spec, videos, warm_videos[:sum(spec)], env, work,
                                          a.warm_rounds, a.timeout))
            p2, p2s = part2_tables(real, stage_cost, stage_cpu(noop))
            print_table("Part 2 — real pipeline on video", p2)
            print_table("Part 2 — per stage", p2s)
            for r in real:
                for e in sorted(set(r.errors))[:10]:
                    print(f"  {r.label}: {e}")
        connection.close()
    finally:
        Worker.stop_all()
        with contextlib.suppress(Exception):
            flush_redis()
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}")

    parts = [
        f"`bench/pipeline.py{' --quick' if a.quick else ''}` — {m['date']}, commit `{m['commit']}`; "
        f"{m['nproc']} CPUs ({m['cpu']}), {m['ram']} RAM, Python {m['python']}. Test-profile stack "
        f"(PostgreSQL 18 with fsync off, Redis broker), own database `{DB_NAME}`, production settings "
        "(`DEBUG=0`), no beat. The host is shared: the 1-minute load average is given per part."]
    if noop:
        rows, brk = part1_tables(ping, noop)
        l0, l1 = loads.get("part 1", (0, 0))
        parts += [
            "### Orchestration overhead (noop stages)",
            f"One worker `--role all` with `MEDIAINTEL_NOOP_STAGES=1` (every stage claims, does nothing, "
            f"completes). Baseline: {len(ping.values)} sequential `mediaintel.maintenance.ping` round trips "
            f"(send, wait for the result from the Redis result backend). Pipeline: {noop[0].k} distinct text "
            f"files ingested one at a time (text plan: {plan_text('text')}), timed from the commit of the "
            "ingest transaction to the asset's `processed_at` (status `ready`). Per stage = that wall ÷ the "
            f"critical path in levels ({noop[0].n_levels}); with `-c 1` siblings run one after the other, so "
            f"the serial path is {noop[0].serial_runs} stage runs and that division is shown too; `-c 3` runs "
            f"siblings in parallel. Load average {l0:.1f} → {l1:.1f}; host CPU: {part1_host.text()}.",
            md_table(rows), "Where the time goes (per text asset):", md_table(brk)]
    if real:
        p2, p2s = part2_tables(real, stage_cost, stage_cpu(noop))
        v = real[0]
        parts += [
            "### Real pipeline on video",
            f"{v.n} distinct {size[0]}×{size[1]} videos of {a.seconds:g} s (three captioned scenes, espeak-ng "
            f"speech; `var/bench-media`), the full video plan ({n_video_stages()} stages) through the real "
            "engines. Files are ingested (stored + probed) first with the pipeline start deferred; the wall clock "
            "runs from starting all pipelines back to back to the last asset's `processed_at`. Each layout is "
            f"warmed up first with distinct videos until every prefork child has run every model stage (models "
            f"load lazily per child; at most {a.warm_rounds} rounds). Two stage slots in both layouts: the host "
            f"has {os.cpu_count()} cores and the engines are CPU-bound (some multi-threaded), so more slots would "
            "only oversubscribe the CPUs. `python -m workers` gives each pool child cores ÷ *its own* "
            "concurrency compute threads, so the two layouts differ in threads too (see the table).",
            "Orchestration's share, four ways. With several stage slots the wall clock is shared: the "
            "share that matters is of the slots' time (wall × slots), i.e. how much sooner the run would end "
            "if orchestration cost nothing. *Upper bound*: all slot time spent outside stage runs "
            "(`started_at` → `finished_at`), whatever its cause (dispatch, broker hop, idle slots). "
            "*Estimate*: stage runs × the per-stage cost of part 1 (`-c 1` wall ÷ "
            f"stage runs on its serial path, p50 {ms(stage_cost)} ms, which includes the broker hop); the "
            "row charged serially to one clock counts every slot's runs against it and overstates by up to "
            "the number of slots. "
            "*Measured*: the worker-slot time spent after each stage's work, from StageRun timestamps: for "
            "every stage that released successors, its `finished_at` → the last released successor's "
            "`queued_at` (commit + `dispatch_ready`, which runs in the finishing worker's slot), plus, per "
            "asset, last stage finished → `processed_at`. Neither includes the broker hop and claim before "
            "`started_at` (part 1: the `queued → started` rows). *CPU*: stage runs × the CPU one noop stage "
            "costs in part 1 (worker processes + their PostgreSQL backends), as a share of all the CPU this run "
            "used (workers, PostgreSQL backends of the bench database, bench process): unlike the wall-clock "
            "figures it does not depend on what other tenants of a shared host are doing. The projection "
            "divides the bench's CPU seconds per media second into the host's cores (CPU-bound, perfect "
            "packing).",
            md_table(p2), "Per stage (mean run time; p50 wait from queued to started, which includes queueing "
            "behind the other videos):", md_table(p2s)]
    text = "\n\n".join(parts)
    if not a.no_write and (noop or real):
        write_section("Pipeline", text)
        print(f"\nwrote the '## Pipeline' section of {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        Worker.stop_all()
