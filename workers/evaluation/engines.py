"""What is evaluated: the pipeline's engines, called in-process the way the stage tasks call them.

:class:`PipelineEngines` is the production set (the workers' engine builders, workers/stage_engines.py,
from the same stage configuration objects). The scorer (:mod:`workers.evaluation.run`) calls these methods and
nothing else, so another set with the same methods (an engine under trial, or the known-answer
engines of the tests) is evaluated the same way. Every method takes the dataset item it works on.
A method raising :class:`EngineUnavailable` marks its section "skipped" with the reason.

Signals follow apps/moderation/signals.py: the same label → category tables, the same floor
under which the open_nsfw score is not a signal.
"""

from __future__ import annotations

from typing import Any

from apps.moderation import taxonomy
from mediacommon.stageconfig import StageConfigs
from workers import stage_engines
from workers.engines.base import EngineUnavailable as EngineUnavailable
from workers.evaluation.dataset import Item
from workers.evaluation.metrics import Box

Signal = tuple[str, float, str]  # (taxonomy category, score 0..1, source: nsfw | nudity | objects | text)


class PipelineEngines:
    """The engines the pipeline runs, built from ``stages`` (default ``settings.MEDIAINTEL_STAGES``) as
    the workers build them; ``device`` overrides the configured one."""

    name = "pipeline"

    def __init__(self, device: str | None = None, stages: StageConfigs | None = None) -> None:
        self.stages = stage_engines.configs(stages)
        self.device = device or self.stages.text_embed.device
        self._versions: dict[str, str] = {}
        self._image: tuple[str, Any] | None = None

    def image(self, item: Item) -> Any:
        """The item's decoded image (the last one is kept: every image method of an item shares it)."""
        from workers.engines.decode import load_image

        if self._image is None or self._image[0] != item.file:
            self._image = (item.file, load_image(item.path))
        return self._image[1]

    def frame_at(self, item: Item, seconds: float) -> Any:
        import av

        with av.open(str(item.path)) as c:
            stream = c.streams.video[0]
            c.seek(int(seconds / stream.time_base), stream=stream)
            best = None
            for frame in c.decode(stream):
                best = frame
                if frame.time is not None and frame.time >= seconds:
                    break
            if best is None:
                raise EngineUnavailable(f"{item.file}: no video frame at {seconds}s")
            return best.to_image()

    def versions(self) -> dict[str, str]:
        """Engine name → version for every engine this set has loaded (the run records them)."""
        return dict(self._versions)

    def _note(self, key: str, info: Any) -> None:
        self._versions[key] = getattr(info, "version", str(info))

    # ---------------------------------------------------------------- speech and text

    def transcribe(self, item: Item) -> tuple[str, str]:
        engine = stage_engines.transcriber(self.stages, device=self.device)
        self._note("transcribe", engine.info)  # type: ignore[attr-defined]
        result = engine.transcribe(str(item.path))
        return " ".join(s.text.strip() for s in result.segments).strip(), result.language

    def language(self, item: Item, text: str) -> str:
        from workers.engines.language import get_language_detector

        engine = get_language_detector()
        self._note("language", engine.info)
        return engine.detect(text)[0]

    def ocr(self, item: Item) -> str:
        engine = stage_engines.ocr_engine(self.stages, device=self.device)
        self._note("ocr", engine.info)
        return engine.read(self.image(item)).text

    def text_signals(self, item: Item, text: str) -> list[Signal]:
        engine = stage_engines.text_moderator(self.stages)
        self._note("text_moderation", engine.info)
        out = [(taxonomy.TEXT_CATEGORIES[f.category], f.score, "text") for f in engine.moderate(text)
               if f.category in taxonomy.TEXT_CATEGORIES]
        links = taxonomy.URL.findall(text)
        if len(links) >= 2:
            out.append(("spam/links", min(1.0, 0.3 * len(links)), "text"))
        return out

    # ---------------------------------------------------------------- video and images

    def scenes(self, item: Item) -> list[float]:
        from workers.engines.scenes import cut_times

        engine = stage_engines.scene_engine(self.stages)
        self._note("scenes", getattr(engine, "info", "scenedetect"))
        return cut_times(engine.detect(item.path))

    def objects(self, item: Item, image: Any) -> list[Box]:
        engine = stage_engines.object_detector(self.stages, device=self.device)
        self._note("objects", engine.info)
        return [Box(d.label, d.box, d.confidence) for d in engine.detect([image])[0]]

    def tags(self, item: Item) -> list[str]:
        engine = stage_engines.image_embedder(self.stages, device=self.device)
        self._note("tags", engine.info)
        return [label for label, _ in engine.analyze([self.image(item)])[0].tags]

    def visual_signals(self, item: Item, image: Any) -> list[Signal]:
        nsfw = stage_engines.nsfw_classifier(self.stages, device=self.device)
        self._note("nsfw", nsfw.info)
        out: list[Signal] = []
        score = float(nsfw.score([image])[0])
        if score >= taxonomy.NSFW_SIGNAL_FLOOR:
            out.append(("sexual/explicit_nudity", score, "nsfw"))
        nudity = stage_engines.nudity_detector(self.stages, device=self.device)
        self._note("nudity", nudity.info)
        out.extend((taxonomy.NUDITY_LABELS[d.label], d.confidence, "nudity") for d in nudity.detect([image])[0]
                   if d.label in taxonomy.NUDITY_LABELS)
        try:
            objects = self.objects(item, image)
        except EngineUnavailable:
            objects = []
        out.extend(("violence/weapons", b.score, "objects") for b in objects
                   if b.label.lower() in taxonomy.WEAPON_LABELS)
        return out

    def phash(self, item: Item) -> str:
        from workers.engines import phash

        self._note("phash", phash.info)
        return phash.compute(self.image(item)).hex
