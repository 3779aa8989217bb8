"""Video speed target: a 45 s 720p video with speech, from upload to ``ready``, with warm workers.

    MEDIAINTEL_PROFILE=test .venv/bin/python bench/video.py [--runs 3] [--seconds 45]

Baseline, measured in the same run: the same engines called one after another in this process
(models loaded beforehand; only processing is timed). The platform: gunicorn + one worker
(``--role all -c 2``, engines preloaded) on its own database ``mediaintel_videobench`` of the test
profile's PostgreSQL and Redis DB 5; the clock runs from the start of the HTTP upload until the
asset reads ``ready`` through the API. Workers are warmed with one video first. Writes the
``## Video`` section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench._report import commit, machine_line, write_section  # noqa: E402

MEDIA = ROOT / "var" / "bench-media" / "video"
DB = "mediaintel_videobench"
SPEECH = ("Good evening and welcome to the city news. Tonight the council approved a new plan for the harbour, "
          "with wider footpaths, more trees and a ferry that runs every twenty minutes. Construction begins in "
          "spring and should last about two years. In sport, the local team won on Saturday after a late goal in "
          "the final minute. The weather stays dry tomorrow with light winds from the west and temperatures around "
          "eighteen degrees. That is all for tonight, thank you for watching and good night.")
PATTERNS = ["noise:{s}", "checker:teal", "gradient", "stripes", "bars", "noise:{t}"]


def make_video(i: int, seconds: float) -> Path:
    """A 720p/25 fps clip: six textured scenes, four captions, ~45 s of espeak-ng speech (distinct per i)."""
    from tests import media

    out = MEDIA / f"news-{i}-{int(seconds)}s.mp4"
    if out.exists():
        return out
    MEDIA.mkdir(parents=True, exist_ok=True)
    wav = media.make_speech_wav(MEDIA / f"speech-{i}.wav", SPEECH, speed=165)
    n = 6
    scenes = [(PATTERNS[(k + i) % n].format(s=i + 1, t=i + 9), seconds / n) for k in range(n)]
    caps = [("CITY NEWS", 0.5, 7.0), ("HARBOUR PLAN APPROVED", 8.0, 14.5), ("SPORT", 23.0, 29.5),
            (f"WEATHER: DRY, {18 + i}C", 30.5, 37.0)]
    return media.make_video(out, scenes, size=(1280, 720), fps=25, audio_wav=wav, text_overlays=caps, motion=True)


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def sequential(path: Path) -> dict[str, float]:
    """Every engine of the video plan, one after another, in this process (warm)."""
    import numpy as np

    from mediacommon.stageconfig import StageConfigs
    from workers import stage_engines as se
    from workers.engines import decode, language, phash, scenes, transcribe

    # the engines the platform's stages run with the default configuration (same runtimes: ONNX
    # for tags and text embeddings, ...), so the peer differs from the platform only in orchestration
    stages = StageConfigs()
    tr, o = transcribe.get_transcriber("faster-whisper", "base"), se.ocr_engine(stages)
    nd, ns, ie = se.nudity_detector(stages), se.nsfw_classifier(stages), se.image_embedder(stages)
    te, tm = se.text_embedder(stages), se.text_moderator(stages)
    od, fd = se.object_detector(stages), se.face_detector(stages)
    blank = [np.zeros((64, 64, 3), np.uint8)]
    tr.transcribe(np.zeros(16000, np.float32)), te.embed(["warm"]), ie.analyze(blank), ns.score(blank)
    nd.detect(blank), o.read(blank[0]), od.detect(blank), fd.detect(blank)
    t: dict[str, float] = {}

    def timed(name: str, fn):
        t0 = time.perf_counter()
        out = fn()
        t[name] = time.perf_counter() - t0
        return out

    c0 = cpu()
    timed("probe", lambda: decode.probe(str(path)))
    sc = timed("scenes", lambda: scenes.detect_scenes(str(path)))
    kfs = timed("keyframes", lambda: decode.keyframes(str(path), scene_cuts=[s.start for s in sc[1:]], size=1280))
    imgs = [k.image for k in kfs]
    audio = timed("audio", lambda: decode.extract_audio(str(path)))
    res = timed("transcribe", lambda: tr.transcribe(audio))
    reads = timed("ocr", lambda: [o.read(i) for i in imgs])
    timed("detect", lambda: (nd.detect(imgs), od.detect(imgs)))
    timed("faces", lambda: fd.detect(imgs))
    timed("nsfw", lambda: ns.score(imgs))
    timed("hash", lambda: phash.compute_batch(imgs))
    timed("tags", lambda: ie.analyze(imgs))
    texts = [s.text for s in res.segments] + [r.text for r in reads if r.text]
    timed("text_embed", lambda: te.embed(texts))
    timed("text_flags", lambda: [tm.moderate(x) for x in texts])
    timed("language", lambda: language.detect(" ".join(texts)))
    t["_cpu"] = cpu() - c0
    return t


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stack_env(work: Path) -> dict[str, str]:
    import psycopg

    from mediaintel import devstack

    p = devstack.profile("test")
    devstack.up(p)
    with psycopg.connect(host="127.0.0.1", port=p.pg_port, user="postgres", dbname="postgres",
                         autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB}"')
    env = {**os.environ, "MEDIAINTEL_PROFILE": "test", "DJANGO_SETTINGS_MODULE": "mediaintel.settings",
           "DATABASE_URL": f"postgres://postgres@127.0.0.1:{p.pg_port}/{DB}",
           "BROKER_URL": f"redis://127.0.0.1:{p.redis_port}/5", "MEDIAINTEL_MEDIA_ROOT": str(work / "media"),
           "MEDIAINTEL_WORKER_CACHE": str(work / "cache"), "MEDIAINTEL_PRELOAD": "all", "DEBUG": "1",
           "PYTHONUNBUFFERED": "1", "MEDIAINTEL_ENV": "development", "MEDIAINTEL_THROTTLE_UPLOAD": "1000000/min",
           "MEDIAINTEL_THROTTLE_USER": "1000000/min"}
    import redis

    redis.Redis.from_url(env["BROKER_URL"]).flushdb()
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
    out = subprocess.run([sys.executable, "manage.py", "createuser", "bench", "--role", "admin"], cwd=ROOT, env=env,
                         check=True, capture_output=True, text=True).stdout
    env["_TOKEN"] = next(x.split("=", 1)[1] for x in out.splitlines() if x.startswith("token="))
    return env


def api(base: str, token: str, method: str, path: str, body: bytes | None = None,
        headers: dict[str, str] | None = None) -> dict:
    req = urllib.request.Request(base + path, data=body, method=method,
                                 headers={"Authorization": f"Token {token}", **(headers or {})})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.loads(r.read() or b"{}")


def upload_to_ready(base: str, token: str, path: Path, timeout: float = 300) -> tuple[float, dict]:
    t0 = time.perf_counter()
    a = api(base, token, "POST", f"/api/v1/assets/?title={path.stem}", path.read_bytes(),
            {"Content-Type": "application/octet-stream", "Content-Disposition": f'attachment; filename="{path.name}"'})
    while time.perf_counter() - t0 < timeout:
        d = api(base, token, "GET", f"/api/v1/assets/{a['id']}/")
        if d["status"] in ("ready", "failed"):
            return time.perf_counter() - t0, d
        time.sleep(0.05)
    raise TimeoutError(f"{path.name} not ready after {timeout}s")


def platform_runs(videos: list[Path], warm: Path) -> list[tuple[float, dict]]:
    work = Path(tempfile.mkdtemp(prefix="mi-videobench-"))
    env = stack_env(work)
    token = env.pop("_TOKEN")
    port = free_port()
    logs = work / "logs"
    logs.mkdir()
    procs = [
        subprocess.Popen([sys.executable, "-m", "gunicorn", "mediaintel.wsgi", "-b", f"127.0.0.1:{port}", "-w", "2",
                          "--no-control-socket"], cwd=ROOT, env=env, stdout=(logs / "web.log").open("w"),
                         stderr=subprocess.STDOUT, start_new_session=True),
        subprocess.Popen([sys.executable, "-m", "workers", "--role", "all", "-c", "2"], cwd=ROOT, env=env,
                         stdout=(logs / "worker.log").open("w"), stderr=subprocess.STDOUT, start_new_session=True),
    ]
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:  # both children preload every engine
            if (logs / "worker.log").read_text().count("preloaded text_flags") >= 2:
                break
            time.sleep(1)
        upload_to_ready(base, token, warm)
        return [upload_to_ready(base, token, v) for v in videos]
    finally:
        for p in procs:
            os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            p.wait(timeout=30)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=45.0)
    a = ap.parse_args()
    os.environ.setdefault("MEDIAINTEL_PROFILE", "test")
    videos = [make_video(i, a.seconds) for i in range(a.runs + 1)]
    load0 = os.getloadavg()[0]
    seq = sequential(videos[1])
    seq_total = sum(v for k, v in seq.items() if not k.startswith("_"))
    runs = platform_runs(videos[1:], videos[0])
    load1 = os.getloadavg()[0]
    walls = [w for w, _ in runs]
    med = statistics.median(walls)
    stages = {s["stage"]: s["run_seconds"] for s in runs[0][1]["stages"]}
    rows = [f"| {k} | {v:.2f} | {stages.get(k) or 0:.2f} |" for k, v in seq.items() if not k.startswith("_")]
    text = f"""`bench/video.py` — {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; {machine_line()}, commit {commit()}; load average {load0:.1f} → {load1:.1f}.
A {a.seconds:.0f} s 1280×720 25 fps H.264 clip with {a.seconds:.0f} s of espeak-ng speech, six scenes, four captions.

| | seconds |
|---|---|
| baseline: the same engines one after another in one process (warm) | **{seq_total:.2f}** (CPU {seq['_cpu']:.2f}) |
| platform: upload → `ready`, warm workers (gunicorn + `python -m workers --role all -c 2`), runs | {', '.join(f'{w:.2f}' for w in walls)} |
| platform, median | **{med:.2f}** ({seq_total / med:.2f}× the baseline; target ≤ 7.5 s) |
| media seconds per wall second (platform median) | {a.seconds / med:.1f} |

Per stage (baseline in-process vs the stage's run time in the first platform run):

| stage | baseline s | platform stage s |
|---|---|---|
""" + "\n".join(rows) + """

The platform runs scenes → keyframes → visual stages on one pool child while the other transcribes;
`audio` decodes the track once for transcription; each child uses one CPU thread
(`MEDIAINTEL_THREADS_PER_CHILD`).
"""
    print(text)
    write_section("Video", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
