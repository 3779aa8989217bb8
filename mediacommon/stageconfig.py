"""One frozen configuration object per stage: what its engine loads and how it runs.

Invariants:

- The settings module builds one :class:`StageConfigs` from the environment at start-up
  (``settings.MEDIAINTEL_STAGES``); nothing else reads the environment for a stage.
- The version catalog (:func:`mediacommon.catalog.spec_for`) and the engine a worker loads read the
  *same* object, so a configured weights path is both what the version names and what runs.
- Fields that change results (weights, model, thresholds, language) enter the stage version; fields
  that do not (device, batch size, the runtime backend of the text embedder or of the tagger: the same
  weights give the same outputs within float tolerance on either) do not.
- Stdlib only: the web process imports it to plan stages.

An empty ``weights`` means the model bundled with the engine's package.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ScenesConfig:
    detector: str = "content"
    threshold: float | None = None  # None: the detector's own default


@dataclass(frozen=True)
class KeyframesConfig:
    max_interval: float = 10.0


@dataclass(frozen=True)
class TranscribeConfig:
    backend: str = "faster-whisper"
    model: str = "base"
    weights: str = ""
    device: str = "auto"
    #: CPU threads of the engine; 0: the worker child's share. Not part of the version (same output).
    threads: int = 0

    @property
    def model_or_weights(self) -> str:
        """What the transcriber loads: the weights path when set, else the named model."""
        return self.weights or self.model


@dataclass(frozen=True)
class OcrConfig:
    lang: str = "eng"
    engine: str = "tesserocr"
    device: str = "auto"


@dataclass(frozen=True)
class DetectConfig:
    nudity_weights: str = ""
    objects_weights: str = ""
    device: str = "auto"


@dataclass(frozen=True)
class NsfwConfig:
    weights: str = ""
    device: str = "auto"


@dataclass(frozen=True)
class FacesConfig:
    threshold: float = 0.5


IMAGE_EMBED_BACKENDS = ("onnx", "torch")


@dataclass(frozen=True)
class TagsConfig:
    weights: str = ""
    model: str = ""  # empty: the engine's default EfficientNet-Lite variant
    clip_model: str = ""
    clip_weights: str = ""
    device: str = "auto"
    #: ``onnx`` (onnxruntime, no torch import; exported once from the same weights, see
    #: workers/engines/image_embed.py) or ``torch`` (efficientnet_lite_pytorch). Not part of the version.
    backend: str = "onnx"

    def __post_init__(self) -> None:
        if self.backend not in IMAGE_EMBED_BACKENDS:
            raise ValueError(f"image tagging backend must be one of {IMAGE_EMBED_BACKENDS}, not {self.backend!r}")


#: Backends of the text embedder: ``torch`` (sentence-transformers) and ``onnx`` (onnxruntime +
#: tokenizers, no torch import; the same model exported once, see workers/engines/text_embed_onnx.py).
#: ONNX is the default for both indexing and queries; neither backend enters the stage version.
TEXT_EMBED_BACKENDS = ("torch", "onnx")


@dataclass(frozen=True)
class TextEmbedConfig:
    weights: str = ""  # a sentence-transformers directory; empty: bundled all-MiniLM-L6-v2
    device: str = "auto"
    batch_size: int = 64
    backend: str = "onnx"  # indexing (the ``text_embed`` stage)
    query_backend: str = "onnx"  # query embedding on the search worker

    def __post_init__(self) -> None:
        for name in ("backend", "query_backend"):
            if getattr(self, name) not in TEXT_EMBED_BACKENDS:
                raise ValueError(f"text embedding {name} must be one of {TEXT_EMBED_BACKENDS}, "
                                 f"not {getattr(self, name)!r}")


@dataclass(frozen=True)
class TextFlagsConfig:
    lexicon_paths: tuple[str, ...] = ()


@dataclass(frozen=True)
class StageConfigs:
    """Every stage's configuration, built once by the settings module."""

    scenes: ScenesConfig = field(default_factory=ScenesConfig)
    keyframes: KeyframesConfig = field(default_factory=KeyframesConfig)
    transcribe: TranscribeConfig = field(default_factory=TranscribeConfig)
    ocr: OcrConfig = field(default_factory=OcrConfig)
    detect: DetectConfig = field(default_factory=DetectConfig)
    nsfw: NsfwConfig = field(default_factory=NsfwConfig)
    faces: FacesConfig = field(default_factory=FacesConfig)
    tags: TagsConfig = field(default_factory=TagsConfig)
    text_embed: TextEmbedConfig = field(default_factory=TextEmbedConfig)
    text_flags: TextFlagsConfig = field(default_factory=TextFlagsConfig)
    #: Where engines keep files they build once (the ONNX exports, workers/engines/exports.py); empty: the
    #: engines' default (``~/.cache/mediaintel/models``). Not part of any version.
    model_cache: str = ""
