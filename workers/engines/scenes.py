"""Shot/scene cut detection with PySceneDetect.

Frames are decoded by PyAV and downscaled during colour conversion by one cached swscale context
(``AREA`` filter) before they reach PySceneDetect's :class:`SceneManager`; that was faster here
than PySceneDetect's own OpenCV/PyAV backends, which convert full-size frames and resize after
(see :data:`BACKENDS`; ``backend="opencv"`` keeps the stock path).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import av
import numpy as np
import scenedetect
from av.video.reformatter import VideoReformatter
from scenedetect import (
    AdaptiveDetector,
    ContentDetector,
    FrameTimecode,
    HashDetector,
    HistogramDetector,
    SceneManager,
    VideoStream,
)
from scenedetect.common import Timecode

from workers.engines.base import EngineInfo, PermanentEngineError
from workers.engines.decode import (
    decode_frames,
    main_video_stream,
    media_errors,
    open_media,
    start_seconds,
)

DetectorName = Literal["content", "adaptive", "hash", "histogram"]
BACKENDS = ("pyav", "opencv")
#: Default thresholds of each detector (PySceneDetect's defaults).
DEFAULT_THRESHOLDS: dict[str, float] = {"content": 27.0, "adaptive": 3.0, "hash": 0.35, "histogram": 0.2}
#: Processing width target of auto downscaling (PySceneDetect's ``DEFAULT_MIN_WIDTH``).
AUTO_MIN_WIDTH = 256

logging.getLogger("pyscenedetect").setLevel(logging.WARNING)


@dataclass(frozen=True)
class Scene:
    """A shot ``[start, end)`` in seconds and frames (``end_frame`` exclusive)."""

    index: int
    start: float
    end: float
    start_frame: int
    end_frame: int

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.end - self.start


def downscale_factor(width: int, downscale: int | None, min_width: int = AUTO_MIN_WIDTH) -> float:
    """Integer factor as given, or (``None``) the factor that brings ``width`` to ``min_width``."""
    if downscale is not None:
        return float(max(1, downscale))
    return max(1.0, width / min_width)


class PyAVScaledStream(VideoStream):
    """A forward-only PySceneDetect ``VideoStream`` yielding small BGR frames decoded by PyAV.

    Scaling happens inside the YUV→BGR conversion (one cached swscale context), which is several
    times cheaper than converting full-size frames and resizing them afterwards.
    """

    BACKEND_NAME = "mediaintel-pyav-scaled"

    def __init__(self, path: str | Path, downscale: int | None = None, min_width: int = AUTO_MIN_WIDTH):
        self._path = str(path)
        self._container = open_media(self._path)
        stream = main_video_stream(self._container)
        if stream is None:
            self._container.close()
            raise PermanentEngineError(f"scenes: no video stream in {Path(path).name}")
        stream.thread_type = "AUTO"
        self._stream = stream
        cc = stream.codec_context
        if not cc.width or not cc.height:
            self._container.close()
            raise PermanentEngineError(f"scenes: unknown frame size in {Path(path).name}")
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        self._rate = Fraction(rate) if rate else Fraction(25)
        factor = downscale_factor(cc.width, downscale, min_width)
        self._size = (max(16, round(cc.width / factor)), max(16, round(cc.height / factor)))
        self._start = start_seconds(stream)
        self._reformatter = VideoReformatter()
        self._frames = decode_frames(self._container, stream)
        self._frame: Any = None
        duration = None
        if self._container.duration:
            duration = self._container.duration / av.time_base
        elif stream.duration and stream.time_base:
            duration = float(stream.duration * stream.time_base)
        self._duration_frames = stream.frames or (round(duration * float(self._rate)) if duration else None)

    # --- VideoStream API used by SceneManager
    @property
    def path(self) -> str:
        return self._path

    @property
    def name(self) -> str:
        return Path(self._path).stem

    @property
    def is_seekable(self) -> bool:
        return False

    @property
    def frame_rate(self) -> Fraction:
        return self._rate

    @property
    def duration(self) -> FrameTimecode | None:
        if not self._duration_frames:
            return None
        return FrameTimecode(int(self._duration_frames), self._rate)

    @property
    def frame_size(self) -> tuple[int, int]:
        return self._size

    @property
    def aspect_ratio(self) -> float:
        return 1.0

    def _seconds(self) -> float:
        if self._frame is None:
            return 0.0
        t = float(self._frame.pts * self._frame.time_base) if self._frame.pts is not None else self._frame.time
        return max(0.0, (t or 0.0) - self._start)

    @property
    def position(self) -> FrameTimecode:
        if self._frame is None or self._frame.pts is None or not self._frame.time_base:
            return self.base_timecode
        tb = Fraction(self._frame.time_base)
        pts = self._frame.pts - round(Fraction(self._start) / tb)
        return FrameTimecode(Timecode(pts=max(0, pts), time_base=tb), self._rate)

    @property
    def position_ms(self) -> float:
        return self._seconds() * 1000.0

    @property
    def frame_number(self) -> int:
        return 0 if self._frame is None else round(self._seconds() * float(self._rate)) + 1

    def read(self, decode: bool = True) -> np.ndarray | bool:
        frame = next(self._frames, None)
        if frame is None:
            return False
        self._frame = frame
        if not decode:
            return True
        small = self._reformatter.reformat(frame, self._size[0], self._size[1], "bgr24", interpolation="AREA")
        return small.to_ndarray()

    def reset(self) -> None:
        raise NotImplementedError("forward-only stream")

    def seek(self, target: Any) -> None:
        raise NotImplementedError("forward-only stream")

    def close(self) -> None:
        """Release the container."""
        self._frames.close()
        self._container.close()


def _make_detector(name: str, threshold: float, min_scene_len: float) -> scenedetect.SceneDetector:
    if name == "content":
        return ContentDetector(threshold=threshold, min_scene_len=min_scene_len)
    if name == "adaptive":
        return AdaptiveDetector(adaptive_threshold=threshold, min_scene_len=min_scene_len)
    if name == "hash":
        return HashDetector(threshold=threshold, min_scene_len=min_scene_len)
    if name == "histogram":
        return HistogramDetector(threshold=threshold, min_scene_len=min_scene_len)
    raise ValueError(f"unknown scene detector {name!r}; use one of {sorted(DEFAULT_THRESHOLDS)}")


class SceneDetectEngine:
    """Scene cut detection (PySceneDetect ``content`` by default, ``adaptive``/``hash``/``histogram``).

    ``threshold``: the detector's own scale (``None`` = its default). ``min_scene_len``: seconds
    before another cut may follow. ``downscale``: integer factor, or ``None`` for auto (processing
    width ≈ 256 px). ``backend``: ``"pyav"`` (scaled decode, default) or ``"opencv"`` (stock).
    """

    def __init__(
        self,
        detector: DetectorName = "content",
        threshold: float | None = None,
        *,
        min_scene_len: float = 0.5,
        downscale: int | None = None,
        backend: Literal["pyav", "opencv"] = "pyav",
    ) -> None:
        if detector not in DEFAULT_THRESHOLDS:
            raise ValueError(f"unknown scene detector {detector!r}; use one of {sorted(DEFAULT_THRESHOLDS)}")
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; use one of {BACKENDS}")
        self.detector = detector
        self.threshold = DEFAULT_THRESHOLDS[detector] if threshold is None else float(threshold)
        self.min_scene_len = float(min_scene_len)
        self.downscale = downscale
        self.backend = backend
        ds = "auto" if downscale is None else str(downscale)
        self.info = EngineInfo(
            name="pyscenedetect",
            version=f"{scenedetect.__version__}-{detector}-t{self.threshold:g}-m{self.min_scene_len:g}-ds{ds}",
            device="cpu",
            params={"detector": detector, "threshold": self.threshold, "min_scene_len": self.min_scene_len,
                    "downscale": ds, "backend": backend},
        )

    def detect(self, path: str | Path) -> list[Scene]:
        """Scenes covering the whole video in order (a video without cuts is one scene).

        Raises :class:`PermanentEngineError` for unreadable media or media without video frames.
        """
        manager = SceneManager()
        manager.add_detector(_make_detector(self.detector, self.threshold, self.min_scene_len))
        with media_errors(path, "scenes"):
            if self.backend == "pyav":
                manager.auto_downscale = False
                manager.downscale = 1
                video: Any = PyAVScaledStream(path, self.downscale)
            else:
                if not Path(path).is_file():
                    raise PermanentEngineError(f"scenes: cannot open {Path(path).name}: not found")
                try:
                    video = scenedetect.open_video(str(path), backend="opencv")
                except scenedetect.VideoOpenFailure as exc:
                    raise PermanentEngineError(f"scenes: unreadable or corrupt media {Path(path).name}: {exc}") \
                        from exc
                if self.downscale is not None:
                    manager.auto_downscale = False
                    manager.downscale = self.downscale
            try:
                frames = manager.detect_scenes(video)
            finally:
                if isinstance(video, PyAVScaledStream):
                    video.close()
        if frames <= 0:
            raise PermanentEngineError(f"scenes: no decodable video frame in {Path(path).name}")
        fps = float(video.frame_rate)
        return [
            Scene(index=i, start=start.seconds, end=end.seconds,
                  start_frame=round(start.seconds * fps), end_frame=round(end.seconds * fps))
            for i, (start, end) in enumerate(manager.get_scene_list(start_in_scene=True))
        ]


def make_engine(**options: Any) -> SceneDetectEngine:
    """Engine with ``options`` (``detector``, ``threshold``, ...); an option given as None takes its
    default (``content``; the detector's own threshold). The scenes stage passes its configuration."""
    kwargs: dict[str, Any] = {"detector": "content"}
    kwargs.update({k: v for k, v in options.items() if v is not None})
    return SceneDetectEngine(**kwargs)


def detect_scenes(path: str | Path, detector: DetectorName | None = None, **kwargs: Any) -> list[Scene]:
    """Scenes of ``path``; unset options take their defaults (see :func:`make_engine`)."""
    return make_engine(detector=detector, **kwargs).detect(path)


def cut_times(scenes: list[Scene]) -> list[float]:
    """Cut times in seconds (start of every scene but the first)."""
    return [s.start for s in scenes[1:]]
