"""Media decoding with PyAV: probing, audio extraction, keyframes and images.

All times are seconds from the start of the media (a stream's own ``start_time`` offset is
removed), matching the scene detector's timeline. Failures on unreadable or corrupt input raise
:class:`PermanentEngineError`; OS-level hiccups (EIO, out of memory) raise
:class:`TransientEngineError`. Memory stays bounded on long media: audio streams through a
resampler into one growing output buffer, frames are fetched by seeking and decoding forward.
"""

from __future__ import annotations

import contextlib
import errno
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
import av.error
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from workers.engines.base import PermanentEngineError, TransientEngineError

PathLike = str | Path
Size = int | tuple[int, int] | None

#: Decode errors tolerated per stream (corrupt packets are skipped) before giving up.
MAX_DECODE_ERRORS = 25
_TRANSIENT_ERRNOS = {errno.EIO, errno.ENOMEM, errno.EAGAIN, errno.EMFILE, errno.ENFILE, errno.ENOSPC,
                     errno.ETIMEDOUT, errno.EINTR}
# FFmpeg demuxers report truncated/garbled data as EIO: from FFmpeg it is not worth a retry.
_FFMPEG_TRANSIENT_ERRNOS = _TRANSIENT_ERRNOS - {errno.EIO}
_EPS = 1e-6  # seconds: float slack when comparing frame times with targets
_IMAGE_FORMATS = ("image2", "_pipe", "gif", "webp")


@dataclass(frozen=True)
class ProbeResult:
    """Container and stream facts of a media file (``None`` where unknown).

    ``truncated``/``decoded_end`` (set by ``probe(verify=True)``): the decodable data ends well
    before the ``duration`` the header claims (e.g. an interrupted upload of a streamable format).
    """

    format_name: str
    duration: float | None
    bit_rate: int | None
    has_video: bool
    has_audio: bool
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    video_codec: str | None = None
    frame_count: int | None = None
    frame_count_exact: bool = False
    rotation: int = 0
    audio_codec: str | None = None
    sample_rate: int | None = None
    channels: int | None = None
    is_image: bool = False
    truncated: bool = False
    decoded_end: float | None = None

    @property
    def display_size(self) -> tuple[int, int] | None:
        """``(width, height)`` as displayed, i.e. swapped for 90°/270° rotated (phone) videos."""
        if self.width is None or self.height is None:
            return None
        if abs(self.rotation) % 180 == 90:
            return self.height, self.width
        return self.width, self.height


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


# --------------------------------------------------------------------------- errors


@contextlib.contextmanager
def media_errors(path: PathLike, what: str) -> Iterator[None]:
    """Map PyAV/OS errors raised inside the block to engine errors naming the file and ``what``."""
    name = Path(path).name
    try:
        yield
    except (PermanentEngineError, TransientEngineError):
        raise
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError) as exc:
        raise PermanentEngineError(f"{what}: cannot open {name}: {exc.strerror or exc}") from exc
    except MemoryError as exc:
        raise TransientEngineError(f"{what}: out of memory on {name}") from exc
    except av.error.FFmpegError as exc:
        if isinstance(exc, OSError) and exc.errno in _FFMPEG_TRANSIENT_ERRNOS:
            raise TransientEngineError(f"{what}: I/O error on {name}: {exc}") from exc
        raise PermanentEngineError(f"{what}: unreadable or corrupt media {name}: {exc}") from exc
    except OSError as exc:
        if exc.errno in _TRANSIENT_ERRNOS:
            raise TransientEngineError(f"{what}: I/O error on {name}: {exc}") from exc
        raise PermanentEngineError(f"{what}: cannot read {name}: {exc}") from exc


def open_media(path: PathLike) -> av.container.InputContainer:
    return av.open(str(path), mode="r", metadata_errors="ignore")


def decode_frames(container: av.container.InputContainer, stream: av.stream.Stream) -> Iterator[Any]:
    """Decode ``stream`` from the current position, skipping a bounded number of corrupt packets."""
    failures = 0
    for packet in container.demux(stream):
        try:
            frames = packet.decode()
        except av.error.InvalidDataError:
            failures += 1
            if failures > MAX_DECODE_ERRORS:
                raise
            continue
        yield from frames


# --------------------------------------------------------------------------- probe


def main_video_stream(container: av.container.InputContainer) -> av.video.stream.VideoStream | None:
    """The main video stream, ignoring cover art (``attached_pic``) in audio files."""
    candidates = [
        s for s in container.streams.video
        if not (s.disposition & av.stream.Disposition.attached_pic)
    ]
    if not candidates:
        return None
    try:
        best = container.streams.best("video")
    except Exception:
        best = None
    return best if best in candidates else candidates[0]


def main_audio_stream(container: av.container.InputContainer) -> av.audio.stream.AudioStream | None:
    if not container.streams.audio:
        return None
    try:
        best = container.streams.best("audio")
    except Exception:
        best = None
    return best or container.streams.audio[0]


def start_seconds(stream: av.stream.Stream) -> float:
    if stream.start_time is None or stream.time_base is None:
        return 0.0
    return float(stream.start_time * stream.time_base)


def _duration(container: av.container.InputContainer, *streams: av.stream.Stream | None) -> float | None:
    if container.duration is not None and container.duration > 0:
        return container.duration / av.time_base
    durations = [
        float(s.duration * s.time_base) for s in streams
        if s is not None and s.duration and s.time_base is not None
    ]
    return max(durations) if durations else None


def stream_fps(stream: av.video.stream.VideoStream) -> float | None:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate:
            return float(rate)
    return None


def probe(path: PathLike, *, verify: bool = True) -> ProbeResult:
    """Read container/stream facts of ``path``.

    With ``verify`` the first video (and audio) frame is decoded too, so a file with a valid header
    but undecodable payload fails here rather than later, and the last seconds are decoded to
    detect truncation (costs at most one GOP). Raises :class:`PermanentEngineError` for missing,
    unreadable, corrupt or stream-less files.
    """
    with media_errors(path, "probe"), open_media(path) as container:
        video = main_video_stream(container)
        audio = main_audio_stream(container)
        if video is None and audio is None:
            raise PermanentEngineError(f"probe: no audio or video stream in {Path(path).name}")
        fmt = container.format.name
        duration = _duration(container, video, audio)
        info: dict[str, Any] = {}
        if video is not None:
            cc = video.codec_context
            fps = stream_fps(video)
            exact = bool(video.frames)
            count = video.frames or (round(duration * fps) if duration and fps else None)
            info.update(width=cc.width or None, height=cc.height or None, fps=fps, video_codec=cc.name,
                        frame_count=count, frame_count_exact=exact)
        if audio is not None:
            ac = audio.codec_context
            info.update(audio_codec=ac.name, sample_rate=ac.sample_rate or None, channels=ac.channels or None)
        is_image = video is not None and audio is None and (
            any(tag in fmt for tag in _IMAGE_FORMATS) or info.get("frame_count") == 1
        )
        if verify:
            rotation, width, height = _verify(container, video, audio, Path(path).name)
            info["rotation"] = rotation
            if video is not None and width:
                info.update(width=width, height=height)
            main = video or audio
            if duration and not is_image and not ("mp4" in fmt and _index_within_file(main, Path(path))):
                end = _decoded_end(container, main, duration)
                if end is not None:
                    info.update(decoded_end=end, truncated=duration - end > max(1.0, 0.05 * duration))
        if is_image and not duration:
            info["frame_count"] = info.get("frame_count") or 1
        return ProbeResult(
            format_name=fmt,
            duration=duration,
            bit_rate=container.bit_rate or None,
            has_video=video is not None,
            has_audio=audio is not None,
            is_image=is_image,
            **info,
        )


def _verify(
    container: av.container.InputContainer,
    video: av.video.stream.VideoStream | None,
    audio: av.audio.stream.AudioStream | None,
    name: str,
) -> tuple[int, int | None, int | None]:
    """Decode the first frame of each main stream; return (rotation, width, height) of video."""
    rotation, width, height = 0, None, None
    rewind = False
    for stream in (video, audio):
        if stream is None:
            continue
        if rewind:
            try:
                container.seek(0)
            except av.error.FFmpegError:
                break  # not seekable: the video frame decoded, good enough
        rewind = True
        frame = next(iter(decode_frames(container, stream)), None)
        if frame is None:
            raise PermanentEngineError(f"probe: no decodable {stream.type} frame in {name}")
        if stream is video:
            rotation = round(getattr(frame, "rotation", 0) or 0)
            width, height = frame.width, frame.height
    return rotation, width, height


def _index_within_file(stream: Any, path: Path) -> bool:
    """True when the (complete, mp4/mov) sample index exists and ends inside the file."""
    try:
        entries = stream.index_entries
        if not len(entries):
            return False
        last = entries[len(entries) - 1]
        return bool(last.pos + last.size <= path.stat().st_size)
    except Exception:
        return False


def _decoded_end(container: av.container.InputContainer, stream: Any, duration: float) -> float | None:
    """Media time where decodable data of ``stream`` ends (decodes from ~2 s before the end)."""
    start = start_seconds(stream)
    try:
        container.seek(int((start + max(0.0, duration - 2.0)) / stream.time_base), stream=stream)
    except av.error.FFmpegError:
        return None
    end = None
    for frame in decode_frames(container, stream):
        t = _frame_time(frame, stream.time_base)
        if t is None:
            continue
        if isinstance(frame, av.AudioFrame):
            span = frame.samples / (frame.sample_rate or 1)
        else:
            span = float(frame.duration * frame.time_base) if frame.duration and frame.time_base else 0.0
        end = max(end or 0.0, t - start + span)
    return end


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


def _frame_time(frame: Any, tb: Any) -> float | None:
    if frame.pts is not None and tb:
        return float(frame.pts * tb)
    return frame.time


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
