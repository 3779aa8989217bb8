"""Queue ``transcribe``: speech to text (faster-whisper by default; openai-whisper for .pt weights)."""

from __future__ import annotations

from typing import Any

from django.core.files.storage import default_storage

from apps.insights import models as im
from workers.base import StageContext, StageSkipped
from workers.tasks import stage_task
from workers.tasks.decode import derived_key
from workers.telemetry import engine_call


def transcriber() -> Any:
    """The configured transcriber (``settings.MEDIAINTEL_STAGES.transcribe``)."""
    from workers.stage_engines import transcriber as build

    return build()


def _load_wav(key: str) -> Any:
    import wave

    import numpy as np

    with default_storage.open(key, "rb") as f, wave.open(f, "rb") as w:
        if w.getsampwidth() != 2 or w.getnchannels() != 1:
            raise ValueError("expected 16-bit mono WAV")
        data = w.readframes(w.getnframes())
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0


@stage_task("transcribe")
def transcribe(ctx: StageContext) -> dict[str, Any]:
    """Transcript segments with times, confidence and the detected language."""
    key = derived_key(ctx.asset.sha256, "audio16k.wav")
    if not ctx.asset.has_audio or not default_storage.exists(key):
        raise StageSkipped("no audio track to transcribe")
    engine = transcriber()
    audio = _load_wav(key)
    with engine_call("transcribe"):
        result = engine.transcribe(audio)
    rows = [{"index": i, "start": s.start, "end": s.end, "text": s.text.strip(), "language": result.language,
             "confidence": s.confidence} for i, s in enumerate(result.segments) if s.text.strip()]
    ctx.save(im.TranscriptSegment, rows)
    return {"segments": len(rows), "language": result.language,
            "language_probability": round(result.language_probability, 3), "engine": engine.info.version,
            "cpu_threads": engine.info.params.get("cpu_threads")}
