"""Container facts and integrity of media files with PyAV: what the upload check and the worker's
``probe`` stage share (no numpy; see the package docstring for the import rule).

All times are seconds from the start of the media (a stream's own ``start_time`` offset is
removed). Failures on unreadable or corrupt input raise :class:`PermanentEngineError`; OS-level
hiccups (EIO, out of memory) raise :class:`TransientEngineError`.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import av.error

from mediacommon.errors import PermanentEngineError, TransientEngineError

PathLike = str | Path

#: Decode errors tolerated per stream (corrupt packets are skipped) before giving up.
MAX_DECODE_ERRORS = 25
TRANSIENT_ERRNOS = {errno.EIO, errno.ENOMEM, errno.EAGAIN, errno.EMFILE, errno.ENFILE, errno.ENOSPC,
                    errno.ETIMEDOUT, errno.EINTR}
# FFmpeg demuxers report truncated/garbled data as EIO: from FFmpeg it is not worth a retry.
_FFMPEG_TRANSIENT_ERRNOS = TRANSIENT_ERRNOS - {errno.EIO}
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
        if exc.errno in TRANSIENT_ERRNOS:
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


def container_duration(
    container: av.container.InputContainer, *streams: av.stream.Stream | None
) -> float | None:
    """The container's duration (s), else the longest of ``streams'`` own; None when unknown."""
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
        duration = container_duration(container, video, audio)
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
        t = frame_time(frame, stream.time_base)
        if t is None:
            continue
        if isinstance(frame, av.AudioFrame):
            span = frame.samples / (frame.sample_rate or 1)
        else:
            span = float(frame.duration * frame.time_base) if frame.duration and frame.time_base else 0.0
        end = max(end or 0.0, t - start + span)
    return end


def frame_time(frame: Any, tb: Any) -> float | None:
    """A decoded frame's time (s) on its stream's clock (``start_time`` not removed)."""
    if frame.pts is not None and tb:
        return float(frame.pts * tb)
    return frame.time

