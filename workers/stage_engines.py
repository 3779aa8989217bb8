"""The engine each stage runs, built from that stage's configuration object.

Invariant: stage tasks, the worker's preloading (workers/process.py), the search worker and the
evaluation harness get their engines here, from the same :class:`~mediacommon.stageconfig.StageConfigs`
the version catalog reads (``settings.MEDIAINTEL_STAGES`` unless one is passed), so what a stage
version names is what runs. Engines are memoised per argument tuple: the same configuration gives
the same engine object in a process (a preloaded engine is the one the first task gets).
"""

from __future__ import annotations

from typing import Any

from mediacommon.stageconfig import StageConfigs


def configs(stages: StageConfigs | None = None) -> StageConfigs:
    """``stages``, or the process's configuration (``settings.MEDIAINTEL_STAGES``)."""
    if stages is not None:
        return stages
    from django.conf import settings

    return settings.MEDIAINTEL_STAGES


def scene_engine(stages: StageConfigs | None = None) -> Any:
    from workers.engines.scenes import make_engine

    c = configs(stages).scenes
    return make_engine(detector=c.detector, threshold=c.threshold)


def keyframe_interval(stages: StageConfigs | None = None) -> float:
    return configs(stages).keyframes.max_interval


def transcriber(stages: StageConfigs | None = None, device: str | None = None) -> Any:
    from workers.engines.transcribe import get_transcriber
    from workers.process import threads_per_child

    c = configs(stages).transcribe
    return get_transcriber(c.backend, c.model_or_weights, cpu_threads=c.threads or threads_per_child(),
                           device=device or c.device)


def ocr_engine(stages: StageConfigs | None = None, device: str | None = None) -> Any:
    from workers.engines.ocr import get_ocr

    c = configs(stages).ocr
    return get_ocr(lang=c.lang, engine=c.engine, device=device or c.device)


def nudity_detector(stages: StageConfigs | None = None, device: str | None = None) -> Any:
    from workers.engines.detect import get_nudity_detector

    c = configs(stages).detect
    return get_nudity_detector(c.nudity_weights or None, device=device or c.device)


def object_detector(stages: StageConfigs | None = None, device: str | None = None) -> Any:
    """Configured YOLO weights, else the bundled YOLOv3-tiny."""
    from workers.engines.detect import get_object_detector

    c = configs(stages).detect
    return get_object_detector(c.objects_weights or None, device=device or c.device)


def nsfw_classifier(stages: StageConfigs | None = None, device: str | None = None) -> Any:
    from workers.engines.nsfw import get_classifier

    c = configs(stages).nsfw
    return get_classifier(c.weights or None, device=device or c.device)


def face_detector(stages: StageConfigs | None = None) -> Any:
    from workers.engines.faces import FaceConfig, get_face_detector

    return get_face_detector(FaceConfig(threshold=configs(stages).faces.threshold))


def image_embedder(stages: StageConfigs | None = None, device: str | None = None) -> Any:
    from workers.engines.image_embed import get_embedder

    all_stages = configs(stages)
    c = all_stages.tags
    if c.backend == "onnx":
        from workers.engines.image_embed import get_onnx_embedder
        from workers.process import threads_per_child

        return get_onnx_embedder(c.weights or None, c.model or None, device=device or c.device,
                                 threads=threads_per_child(), cache=all_stages.model_cache or None)
    return get_embedder(c.weights or None, c.model or None, device=device or c.device)


def text_embedder(stages: StageConfigs | None = None, *, query: bool = False, device: str | None = None) -> Any:
    """The ``text_embed`` stage's embedder (its ``backend``), or with ``query`` the search worker's
    (its ``query_backend``): the same weights either way, so query and chunk vectors share one space."""
    all_stages = configs(stages)
    c = all_stages.text_embed
    backend = c.query_backend if query else c.backend
    if backend == "onnx":
        from workers.engines.text_embed_onnx import get_onnx_text_embedder
        from workers.process import threads_per_child

        # queries stay on the CPU: a search worker holds no CUDA context for one sentence at a time
        return get_onnx_text_embedder(c.weights or None, threads_per_child(), all_stages.model_cache or None,
                                      "cpu" if query else (device or c.device))
    from workers.engines.text_embed import get_text_embedder

    return get_text_embedder(c.weights or None, device=device or c.device)


def text_moderator(stages: StageConfigs | None = None) -> Any:
    from workers.engines.text_moderation import get_text_moderator

    return get_text_moderator(lexicon_paths=configs(stages).text_flags.lexicon_paths)
