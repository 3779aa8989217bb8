"""Media decoding with PyAV: probing, audio extraction, keyframes and images.

All times are seconds from the start of the media (a stream's own ``start_time`` offset is
removed), matching the scene detector's timeline. Failures on unreadable or corrupt input raise
:class:`PermanentEngineError`; OS-level hiccups (EIO, out of memory) raise
:class:`TransientEngineError`. Memory stays bounded on long media: audio streams through a
resampler into one growing output buffer, frames are fetched by seeking and decoding forward.

Probing (container facts and the verifying probe) lives in :mod:`mediacommon.container`, shared
with the web tier's upload check, and is re-exported here; this module adds the numpy parts.
"""

from __future__ import annotations

import heapq
import io
import itertools
import math
import wave
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from mediacommon.container import (  # noqa: F401  (re-exported: engines and tests use decode.probe etc.)
    MAX_DECODE_ERRORS,
    PathLike,
    ProbeResult,
    decode_frames,
    main_audio_stream,
    main_video_stream,
    media_errors,
    open_media,
    probe,
    start_seconds,
    stream_fps,
)
from mediacommon.container import TRANSIENT_ERRNOS as _TRANSIENT_ERRNOS
from mediacommon.container import container_duration as _duration
from mediacommon.container import frame_time as _frame_time
from workers.engines.base import PermanentEngineError, TransientEngineError

Size = int | tuple[int, int] | None

_EPS = 1e-6  # seconds: float slack when comparing frame times with targets


@dataclass
class Keyframe:
    """A decoded frame: media time, frame index, the scene it represents, and an RGB image."""

    time: float
    frame_index: int
    scene_index: int
    image: Image.Image

    @property
    def array(self) -> np.ndarray:
        """The image as an ``(h, w, 3)`` uint8 RGB array."""
        return np.asarray(self.image)


# --------------------------------------------------------------------------- audio


class _Growable:
    """A float32 buffer that grows geometrically (amortised O(1) append)."""

    def __init__(self, capacity: int) -> None:
        self.data = np.zeros(max(1024, capacity), np.float32)
        self.size = 0

    def append(self, chunk: np.ndarray) -> None:
        end = self.size + len(chunk)
        if end > len(self.data):
            bigger = np.zeros(max(end, int(len(self.data) * 1.5)), np.float32)
            bigger[: self.size] = self.data[: self.size]
            self.data = bigger
        self.data[self.size:end] = chunk
        self.size = end

    def result(self) -> np.ndarray:
        data, self.data = self.data, np.zeros(0, np.float32)
        data.resize(self.size, refcheck=False)  # shrink in place (realloc), no second copy
        return data


def iter_audio(path: PathLike, sr: int = 16000, *, align_start: bool = True) -> Iterator[np.ndarray]:
    """Yield float32 mono chunks of the main audio stream resampled to ``sr`` (nothing if no audio).

    With ``align_start``, a stream that starts after time 0 is preceded by silence so that sample
    ``i`` is at ``i / sr`` seconds on the media timeline.
    """
    with media_errors(path, "extract_audio"), open_media(path) as container:
        stream = main_audio_stream(container)
        if stream is None:
            if main_video_stream(container) is None:
                raise PermanentEngineError(f"extract_audio: no audio or video stream in {Path(path).name}")
            return
        stream.thread_type = "AUTO"
        # rematrix_maxval=1: stereo->mono averages (FFmpeg's default -3 dB centre mix can exceed 1.0).
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sr, options={"rematrix_maxval": "1.0"})
        origin = min(
            (start_seconds(s) for s in (stream, main_video_stream(container)) if s is not None), default=0.0
        )
        first = True
        for frame in decode_frames(container, stream):
            if first:
                first = False
                offset = (frame.time - origin) if frame.time is not None else 0.0
                if align_start and offset > 1.0 / sr:
                    yield np.zeros(round(offset * sr), np.float32)
            for out in resampler.resample(frame):
                yield out.to_ndarray().reshape(-1)
        for out in resampler.resample(None):
            yield out.to_ndarray().reshape(-1)


def extract_audio(path: PathLike, sr: int = 16000, *, max_seconds: float | None = None) -> np.ndarray:
    """Decode the main audio stream as float32 mono at ``sr`` Hz.

    Returns an empty array when the file has no audio stream. Memory is the output array plus a
    few frames; ``max_seconds`` stops early (and caps memory) for very long media.
    """
    with media_errors(path, "extract_audio"), open_media(path) as container:
        duration = _duration(container, main_audio_stream(container)) or 60.0
    limit = None if max_seconds is None else round(max_seconds * sr)
    expected = int(duration * sr) + sr
    buf = _Growable(min(expected, limit) if limit is not None else expected)
    for chunk in iter_audio(path, sr):
        if limit is not None and buf.size + len(chunk) >= limit:
            buf.append(chunk[: limit - buf.size])
            break
        buf.append(chunk)
    return buf.result()


def extract_audio_to_wav(path: PathLike, wav_path: PathLike, sr: int = 16000) -> float:
    """Stream the main audio track into a 16-bit mono wav at ``sr``; returns its duration (s).

    Memory is constant regardless of the media length. Writes an empty wav when there is no audio.
    """
    samples = 0
    with wave.open(str(wav_path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sr)
        for chunk in iter_audio(path, sr):
            out.writeframes((np.clip(chunk, -1.0, 1.0) * 32767).astype("<i2").tobytes())
            samples += len(chunk)
    return samples / sr


# --------------------------------------------------------------------------- frames


def plan_keyframes(
    duration: float | None,
    scene_cuts: Sequence[float] | None,
    max_interval: float = 10.0,
    max_frames: int = 200,
) -> list[tuple[float, int]]:
    """Sample times ``(time, scene_index)``: the middle of every scene, plus evenly spaced samples
    inside scenes longer than ``max_interval`` (each scene of length L gets ``ceil(L/max_interval)``
    samples at the centres of equal sub-intervals).

    At most ``max_frames`` times: every scene first keeps its middle sample (the longest scenes win
    when there are more scenes than frames), then the spare budget goes to the scenes whose current
    sample spacing is widest.
    """
    if not duration or duration <= 0:
        return [(0.0, 0)]
    bounds = [0.0, *sorted(c for c in (scene_cuts or ()) if 0.0 < c < duration), duration]
    scenes = [(a, b) for a, b in itertools.pairwise(bounds) if b > a]
    if not scenes:
        return [(0.0, 0)]
    max_frames = max(1, max_frames)
    wanted = [max(1, math.ceil((b - a) / max_interval - 1e-9)) for a, b in scenes]
    keep = set(range(len(scenes)))
    if len(scenes) > max_frames:
        keep = set(sorted(keep, key=lambda i: scenes[i][1] - scenes[i][0], reverse=True)[:max_frames])
    counts = {i: 1 for i in keep}
    budget = max_frames - len(keep)
    heap = [(-(scenes[i][1] - scenes[i][0]), i) for i in keep if wanted[i] > 1]
    heapq.heapify(heap)
    while budget > 0 and heap:
        _, i = heapq.heappop(heap)
        counts[i] += 1
        budget -= 1
        if counts[i] < wanted[i]:
            heapq.heappush(heap, (-(scenes[i][1] - scenes[i][0]) / counts[i], i))
    plan = []
    for i in sorted(keep):
        a, b = scenes[i]
        n = counts[i]
        plan.extend((a + (k + 0.5) * (b - a) / n, i) for k in range(n))
    return plan


def _out_size(width: int, height: int, size: Size) -> tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, int):
        scale = size / max(width, height)
        if scale >= 1.0:
            return None
        return max(2, round(width * scale) // 2 * 2), max(2, round(height * scale) // 2 * 2)
    return size


def _to_image(frame: av.VideoFrame, size: Size, rotate: bool) -> Image.Image:
    out = _out_size(frame.width, frame.height, size)
    image = frame.to_image(width=out[0], height=out[1]) if out else frame.to_image()
    rotation = round(getattr(frame, "rotation", 0) or 0) if rotate else 0
    if rotation % 360:
        image = image.rotate(rotation, expand=True)
    return image


def frames_at(
    path: PathLike,
    plan: Iterable[tuple[float, int]],
    *,
    size: Size = None,
    rotate: bool = True,
) -> Iterator[Keyframe]:
    """Yield the frame on screen at each planned ``(time, scene_index)``: the last frame whose
    timestamp is ≤ the time.

    Seeks to the keyframe before a target only when that keyframe lies past the current decode
    position (from the container index, or a 3 s heuristic without one), else decodes forward;
    so memory is constant and each target costs at most one GOP of decoding. Targets past the end
    yield the last frame; a frame is never yielded twice.
    """
    with media_errors(path, "keyframes"), open_media(path) as container:
        stream = main_video_stream(container)
        if stream is None:
            raise PermanentEngineError(f"keyframes: no video stream in {Path(path).name}")
        stream.thread_type = "AUTO"
        tb = stream.time_base
        fps = stream_fps(stream) or 25.0
        start = start_seconds(stream)
        key_times = _key_times(stream)
        frames = decode_frames(container, stream)  # from the start, no seek (images cannot seek)
        current: Any = None  # last decoded frame at or before the previous target
        ahead: Any = None  # first decoded frame after the previous target
        last_index = -1
        for target, scene in sorted(plan):
            abs_target = target + start + _EPS
            latest = ahead if ahead is not None else current
            pos = _frame_time(latest, tb) if latest is not None else start
            if pos is not None and abs_target >= pos and _should_seek(key_times, pos, abs_target):
                container.seek(int(abs_target / tb) if tb else int(abs_target * av.time_base), stream=stream)
                frames = decode_frames(container, stream)
                current = ahead = None
            source = itertools.chain((ahead,), frames) if ahead is not None else frames
            ahead = None
            for frame in source:
                t = _frame_time(frame, tb)
                if t is None:
                    continue
                if t > abs_target:
                    ahead = frame
                    break
                current = frame
            # the frame on screen at the target; the first one after a seek that overshot; or the last
            chosen = current if current is not None else ahead
            if chosen is None:
                continue
            index = round((_frame_time(chosen, tb) - start) * fps)
            if index <= last_index:
                continue
            last_index = index
            yield Keyframe(time=max(0.0, _frame_time(chosen, tb) - start), frame_index=index,
                           scene_index=scene, image=_to_image(chosen, size, rotate))
        if last_index < 0:
            raise PermanentEngineError(f"keyframes: no decodable video frame in {Path(path).name}")


def _key_times(stream: av.video.stream.VideoStream) -> list[float]:
    """Keyframe times from the container index (empty when the format has none)."""
    try:
        entries = stream.index_entries
        return sorted(float(e.timestamp * stream.time_base) for e in entries if e.is_keyframe)
    except Exception:
        return []


def _should_seek(key_times: list[float], pos: float, target: float, horizon: float = 3.0) -> bool:
    """Seek when a keyframe lies between the current position and the target (or far ahead)."""
    if not key_times:
        return target - pos > horizon
    i = np.searchsorted(key_times, target, side="right") - 1
    return i >= 0 and key_times[i] > pos + 1e-6


def keyframes(
    path: PathLike,
    scene_cuts: Sequence[float] | None = None,
    *,
    max_interval: float = 10.0,
    max_frames: int = 200,
    size: Size = 1280,
    duration: float | None = None,
) -> list[Keyframe]:
    """One representative frame per scene (its middle) plus samples every ≤ ``max_interval`` s.

    ``scene_cuts`` are cut times in seconds (``None``: the whole video is one scene, sampled every
    ``max_interval``). ``size``: max side in pixels (int), exact ``(w, h)``, or ``None`` for full
    size. Rotation metadata is applied. See :func:`plan_keyframes` for the ``max_frames`` policy.
    """
    if duration is None:
        duration = probe(path, verify=False).duration
    plan = plan_keyframes(duration, scene_cuts, max_interval, max_frames)
    return list(frames_at(path, plan, size=size))


def sample_frames(
    path: PathLike, every_s: float = 1.0, *, max_frames: int = 500, size: Size = 1280
) -> list[Keyframe]:
    """Frames at ``0, every_s, 2*every_s, …`` (animated GIF/WebP, slideshows, uniform sampling).

    A still image yields one frame. At most ``max_frames`` frames (the step widens to fit).
    """
    info = probe(path, verify=False)
    duration = info.duration or 0.0
    step = max(every_s, duration / max_frames if max_frames else every_s)
    n = max(1, math.floor(duration / step + 1e-9) + (0 if duration else 1))
    if duration and n * step < duration - 1e-9:
        n += 1
    plan = [(k * step, 0) for k in range(min(n, max_frames))]
    return list(frames_at(path, plan, size=size))


# --------------------------------------------------------------------------- images


def load_image(path: PathLike, *, max_pixels: int | None = 178_956_970) -> Image.Image:
    """Open an image as RGB with EXIF orientation applied; transparency is composited on white.

    Animated formats give their first frame. Raises :class:`PermanentEngineError` for missing,
    truncated, unsupported or oversized (> ``max_pixels``, checked from the header before decoding;
    Pillow's global decompression-bomb limit applies too) files.
    """
    name = Path(path).name
    try:
        with Image.open(path) as img:
            if max_pixels is not None and img.width * img.height > max_pixels:
                raise PermanentEngineError(
                    f"load_image: {name} is {img.width}x{img.height}, over the {max_pixels} pixel limit")
            img.load()
            image = ImageOps.exif_transpose(img) or img
            return _to_rgb(image)
    except PermanentEngineError:
        raise
    except FileNotFoundError as exc:
        raise PermanentEngineError(f"load_image: cannot open {name}: not found") from exc
    except (UnidentifiedImageError, Image.DecompressionBombError, SyntaxError, ValueError) as exc:
        raise PermanentEngineError(f"load_image: unreadable or unsupported image {name}: {exc}") from exc
    except MemoryError as exc:
        raise TransientEngineError(f"load_image: out of memory on {name}") from exc
    except OSError as exc:
        if exc.errno in _TRANSIENT_ERRNOS:
            raise TransientEngineError(f"load_image: I/O error on {name}: {exc}") from exc
        raise PermanentEngineError(f"load_image: corrupt or truncated image {name}: {exc}") from exc


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        return image.copy()
    if image.mode in {"RGBA", "LA", "PA"} or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode in {"I;16", "I;16B", "I;16L", "I"}:
        arr = np.asarray(image, dtype=np.float64)
        hi = arr.max() or 1.0
        return Image.fromarray((arr * (255.0 / hi)).astype(np.uint8)).convert("RGB")
    return image.convert("RGB")


def jpeg_thumbnail(image: Image.Image | np.ndarray, max_side: int = 320, quality: int = 80) -> bytes:
    """JPEG bytes of ``image`` (PIL or RGB array) shrunk to fit ``max_side`` (never enlarged)."""
    img = Image.fromarray(np.asarray(image, dtype=np.uint8)) if isinstance(image, np.ndarray) else image
    img = _to_rgb(img) if img.mode != "RGB" else img.copy()
    img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality, optimize=True)
    return buf.getvalue()
