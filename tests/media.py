"""Synthetic test media: videos with known scene cuts, text images, speech and tones.

Every generator writes into a path the caller chooses (usually under ``tmp_path``) and returns it,
so tests know the ground truth (cut times, rendered text, durations) exactly. Only PyAV (bundled
FFmpeg), Pillow, numpy and, for speech, the ``espeak-ng`` binary are used.

Scene patterns for :func:`make_video` / :func:`make_image` backgrounds:

* a colour: ``"red"``, ``"#20a0ff"``, ``(12, 200, 40)``
* ``"noise"`` / ``"noise:<seed>"``: blocky coloured noise texture
* ``"checker"``, ``"stripes"``, ``"gradient"``, ``"bars"`` (SMPTE-like colour bars),
  optionally tinted: ``"checker:orange"``
* ``"photo:<path>"``: a real photo fitted inside the frame on black

Note: a panning (``motion="pan"``) noise scene changes so much per frame that PySceneDetect's
ContentDetector sees it as one long burst and can miss the cut next to it (AdaptiveDetector
finds it); use static scenes where cut ground truth matters.
"""

from __future__ import annotations

import itertools
import math
import shutil
import subprocess
import wave
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageColor, ImageDraw, ImageFont

Color = tuple[int, int, int]
Pattern = str | Color
PathLike = str | Path

FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
)
FONT_BOLD_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf",
)

# Inverse of the transform PIL's ImageOps.exif_transpose applies for each EXIF orientation.
_EXIF_INVERSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


# --------------------------------------------------------------------------- fonts and colours


def font(size: int = 32, *, bold: bool = False) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """A scalable TTF font (DejaVu/Liberation when installed, else Pillow's built-in font)."""
    for candidate in FONT_BOLD_CANDIDATES if bold else FONT_CANDIDATES:
        if Path(candidate).exists():
            return ImageFont.truetype(candidate, size)
    return ImageFont.load_default(size=size)


def to_rgb(color: str | Color) -> Color:
    """Colour name, ``#hex`` or RGB tuple to an RGB tuple."""
    if isinstance(color, str):
        rgb = ImageColor.getrgb(color)
        return (rgb[0], rgb[1], rgb[2])
    return (int(color[0]), int(color[1]), int(color[2]))


def pattern_array(pattern: Pattern, size: tuple[int, int]) -> np.ndarray:
    """Render a scene pattern as an ``(h, w, 3)`` uint8 RGB array (see module docstring)."""
    w, h = size
    if not isinstance(pattern, str) or pattern.split(":", 1)[0] not in _PATTERNS:
        return np.broadcast_to(np.array(to_rgb(pattern), np.uint8), (h, w, 3)).copy()
    name, _, arg = pattern.partition(":")
    return _PATTERNS[name](w, h, arg)


def _noise(w: int, h: int, arg: str) -> np.ndarray:
    rng = np.random.default_rng(int(arg) if arg else 0)
    block = 16
    small = rng.integers(0, 256, size=(math.ceil(h / block), math.ceil(w / block), 3), dtype=np.uint8)
    return np.repeat(np.repeat(small, block, axis=0), block, axis=1)[:h, :w].copy()


def _tint(arg: str, default: Color) -> np.ndarray:
    return np.array(to_rgb(arg) if arg else default, np.float32)


def _checker(w: int, h: int, arg: str) -> np.ndarray:
    cell = max(8, min(w, h) // 9)
    yy, xx = np.mgrid[0:h, 0:w]
    mask = ((yy // cell + xx // cell) % 2).astype(np.float32)[..., None]
    color = _tint(arg, (255, 255, 255))
    return (mask * color + (1 - mask) * color * 0.15).astype(np.uint8)


def _stripes(w: int, h: int, arg: str) -> np.ndarray:
    period = max(8, w // 12)
    xx = np.arange(w)
    mask = ((xx // (period // 2)) % 2).astype(np.float32)[None, :, None]
    color = _tint(arg, (255, 200, 0))
    band = mask * color + (1 - mask) * np.array([20, 20, 120], np.float32)
    return np.broadcast_to(band, (h, w, 3)).astype(np.uint8)


def _gradient(w: int, h: int, arg: str) -> np.ndarray:
    color = _tint(arg, (255, 80, 255))
    ramp = np.linspace(0.1, 1.0, w, dtype=np.float32)[None, :, None]
    vramp = np.linspace(1.0, 0.4, h, dtype=np.float32)[:, None, None]
    return (ramp * vramp * color).astype(np.uint8)


def _bars(w: int, h: int, arg: str) -> np.ndarray:
    colors = [(192, 192, 192), (192, 192, 0), (0, 192, 192), (0, 192, 0), (192, 0, 192), (192, 0, 0),
              (0, 0, 192)]
    out = np.zeros((h, w, 3), np.uint8)
    edges = np.linspace(0, w, len(colors) + 1).astype(int)
    for c, (x0, x1) in zip(colors, itertools.pairwise(edges), strict=True):
        out[:, x0:x1] = c
    return out


def _photo(w: int, h: int, arg: str) -> np.ndarray:
    """A real photo (``photo:/path.jpg``) fitted inside the frame, on black (letterbox/pillarbox)."""
    im = Image.open(arg).convert("RGB")
    scale = min(w / im.width, h / im.height)
    im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.BILINEAR)
    out = np.zeros((h, w, 3), np.uint8)
    x, y = (w - im.width) // 2, (h - im.height) // 2
    out[y : y + im.height, x : x + im.width] = np.asarray(im)
    return out


_PATTERNS = {"noise": _noise, "checker": _checker, "stripes": _stripes, "gradient": _gradient, "bars": _bars,
             "photo": _photo}


# --------------------------------------------------------------------------- text


def draw_text(
    image: Image.Image,
    text: str,
    xy: tuple[int, int] | None = None,
    *,
    font_size: int = 40,
    fill: str | Color = "white",
    box: str | Color | None = "black",
    padding: int = 10,
) -> Image.Image:
    """Draw (multi-line) text on ``image`` in place; centred near the bottom when ``xy`` is None."""
    draw = ImageDraw.Draw(image)
    fnt = font(font_size)
    left, top, right, bottom = draw.multiline_textbbox((0, 0), text, font=fnt, spacing=font_size // 4)
    tw, th = right - left, bottom - top
    if xy is None:
        xy = ((image.width - tw) // 2, image.height - th - 3 * padding - image.height // 12)
    x, y = xy
    if box is not None:
        draw.rectangle((x - padding, y - padding, x + tw + padding, y + th + padding), fill=to_rgb(box))
    draw.multiline_text((x - left, y - top), text, font=fnt, fill=to_rgb(fill), spacing=font_size // 4)
    return image


def make_text_image(
    text: str,
    path: PathLike | None = None,
    *,
    font_size: int = 32,
    fg: str | Color = "black",
    bg: str | Color = "white",
    padding: int = 24,
    size: tuple[int, int] | None = None,
    bold: bool = False,
) -> Image.Image:
    """Render ``text`` (``\\n`` for lines) as an RGB image; saved to ``path`` when given.

    Without ``size`` the canvas fits the text plus ``padding``; with it, the text is centred.
    """
    fnt = font(font_size, bold=bold)
    spacing = max(2, font_size // 3)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    left, top, right, bottom = probe.multiline_textbbox((0, 0), text, font=fnt, spacing=spacing)
    tw, th = right - left, bottom - top
    if size is None:
        size = (tw + 2 * padding, th + 2 * padding)
    image = Image.new("RGB", size, to_rgb(bg))
    x, y = (size[0] - tw) // 2 - left, (size[1] - th) // 2 - top
    ImageDraw.Draw(image).multiline_text((x, y), text, font=fnt, fill=to_rgb(fg), spacing=spacing)
    if path is not None:
        _save(image, Path(path))
    return image


def _save(image: Image.Image, path: Path, fmt: str | None = None, quality: int = 92, **kw: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = (fmt or path.suffix.lstrip(".") or "png").upper()
    fmt = {"JPG": "JPEG", "TIF": "TIFF"}.get(fmt, fmt)
    if fmt == "JPEG":
        image.convert("RGB").save(path, "JPEG", quality=quality, **kw)
    else:
        image.save(path, fmt, **kw)


def make_image(
    path: PathLike,
    text: str | None = None,
    *,
    size: tuple[int, int] = (640, 480),
    background: Pattern = "white",
    fg: str | Color = "black",
    font_size: int = 36,
    fmt: str | None = None,
    quality: int = 92,
    exif_orientation: int | None = None,
    mode: str = "RGB",
) -> Path:
    """Write an image (pattern background, optional centred text) as png/jpeg/webp/gif/...

    ``fmt`` defaults to the file suffix. ``exif_orientation`` (2..8) stores the pixels transformed
    and tags them, so a viewer honouring EXIF (``ImageOps.exif_transpose``) shows the upright image.
    ``mode="RGBA"`` makes the background transparent (text stays opaque).
    """
    path = Path(path)
    if mode == "RGBA":
        image = Image.new("RGBA", size, (0, 0, 0, 0))
    else:
        image = Image.fromarray(pattern_array(background, size))
    if text:
        fnt = font(font_size)
        draw = ImageDraw.Draw(image)
        left, top, right, bottom = draw.multiline_textbbox((0, 0), text, font=fnt, spacing=font_size // 3)
        xy = ((size[0] - (right - left)) // 2 - left, (size[1] - (bottom - top)) // 2 - top)
        fill = (*to_rgb(fg), 255) if mode == "RGBA" else to_rgb(fg)
        draw.multiline_text(xy, text, font=fnt, fill=fill, spacing=font_size // 3)
    if mode not in {"RGB", "RGBA"}:
        image = image.convert(mode)
    kwargs: dict[str, object] = {}
    if exif_orientation and exif_orientation != 1:
        image = image.transpose(_EXIF_INVERSE[exif_orientation])
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        kwargs["exif"] = exif.tobytes()
    _save(image, path, fmt, quality=quality, **kwargs)
    return path


# --------------------------------------------------------------------------- audio


def have_espeak() -> bool:
    """Whether the ``espeak-ng`` binary is available for :func:`make_speech_wav`."""
    return shutil.which("espeak-ng") is not None


def make_speech_wav(
    path: PathLike, text: str, voice: str = "en", *, speed: int = 150, sample_rate: int | None = None
) -> Path:
    """Synthesize ``text`` with espeak-ng into a mono 16-bit wav (22.05 kHz, or ``sample_rate``)."""
    if not have_espeak():
        raise RuntimeError("espeak-ng is not installed")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(path), text],
                   check=True, capture_output=True, timeout=120)
    if sample_rate is not None:
        samples, sr = read_wav(path)
        if sr != sample_rate:
            n = round(len(samples) * sample_rate / sr)
            resampled = np.interp(np.linspace(0, len(samples) - 1, n), np.arange(len(samples)), samples)
            write_wav(path, resampled.astype(np.float32), sample_rate)
    return path


def tone(seconds: float, sample_rate: int = 16000, freq: float = 440.0, amplitude: float = 0.3,
         channels: int = 1) -> np.ndarray:
    """A sine tone as float32 ``(samples,)`` (mono) or ``(samples, channels)``."""
    t = np.arange(round(seconds * sample_rate), dtype=np.float64) / sample_rate
    mono = (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return mono if channels == 1 else np.repeat(mono[:, None], channels, axis=1)


def write_wav(path: PathLike, samples: np.ndarray, sample_rate: int) -> Path:
    """Write float samples in [-1, 1] (``(n,)`` or ``(n, channels)``) as 16-bit PCM wav."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.asarray(samples, np.float32)
    channels = 1 if data.ndim == 1 else data.shape[1]
    pcm = (np.clip(data, -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm.tobytes())
    return path


def read_wav(path: PathLike) -> tuple[np.ndarray, int]:
    """Read a 16-bit PCM wav as float32 (mono ``(n,)`` after averaging channels) and its rate."""
    with wave.open(str(path), "rb") as w:
        sr, channels, n = w.getframerate(), w.getnchannels(), w.getnframes()
        raw = np.frombuffer(w.readframes(n), dtype="<i2").astype(np.float32) / 32768.0
    return raw.reshape(-1, channels).mean(axis=1), sr


def make_tone_wav(path: PathLike, seconds: float, *, sample_rate: int = 16000, freq: float = 440.0,
                  channels: int = 1) -> Path:
    """Write a sine-tone wav of exactly ``round(seconds * sample_rate)`` samples."""
    return write_wav(path, tone(seconds, sample_rate, freq, channels=channels), sample_rate)


# --------------------------------------------------------------------------- video


@dataclass(frozen=True)
class TextOverlay:
    """Text burnt into the video between ``start`` and ``end`` seconds."""

    text: str
    start: float
    end: float
    xy: tuple[int, int] | None = None
    font_size: int = 48
    fill: str | Color = "white"
    box: str | Color | None = "black"


def scene_cut_times(scenes: Sequence[tuple[Pattern, float]], fps: float = 25) -> list[float]:
    """Ground-truth cut times (seconds, frame-aligned) for a ``make_video`` scene list."""
    cuts, frames = [], 0
    for _, seconds in scenes[:-1]:
        frames += round(seconds * fps)
        cuts.append(frames / fps)
    return cuts


def make_video(
    path: PathLike,
    scenes: Sequence[tuple[Pattern, float]] = (("red", 2.0), ("noise", 2.0), ("checker:cyan", 2.0)),
    *,
    size: tuple[int, int] = (1280, 720),
    fps: int = 25,
    text_overlays: Iterable[TextOverlay | tuple[str, float, float]] = (),
    audio_wav: PathLike | None = None,
    tone_hz: float | None = None,
    codec: str | None = None,
    audio_codec: str | None = None,
    gop: int | None = None,
    crf: int = 23,
    preset: str = "ultrafast",
    motion: bool | str = True,
    rotation: int | None = None,
) -> Path:
    """Encode a synthetic video whose scenes are ``(pattern, seconds)`` pairs.

    Each scene is a constant pattern, plus (``motion=True``) a small moving square so frames are
    not identical; ``motion="pan"`` also scrolls the whole pattern (realistic, costlier to encode
    and decode). Cuts fall exactly at :func:`scene_cut_times`. ``text_overlays`` burn text in over
    time ranges. Audio: ``audio_wav`` (any file PyAV decodes; cut to the video length) or a sine
    tone over the whole duration with ``tone_hz`` (44.1 kHz stereo, to exercise resampling).
    The container follows the suffix (``.mp4``/``.mov``: H.264 + AAC, ``.mkv``: H.264 + Opus,
    ``.webm``: VP9 + Opus). ``gop`` sets the keyframe interval in frames (encoder default if None);
    ``rotation`` stores a display-matrix rotation (degrees counter-clockwise) like phone videos.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    codec = codec or ("libvpx-vp9" if suffix == ".webm" else "libx264")
    audio_codec = audio_codec or ("libopus" if suffix in {".webm", ".mkv"} else "aac")
    overlays = [o if isinstance(o, TextOverlay) else TextOverlay(*o) for o in text_overlays]
    total_frames = sum(round(s * fps) for _, s in scenes)
    duration = total_frames / fps
    w, h = size

    with av.open(str(path), "w") as out:
        vstream = out.add_stream(codec, rate=fps)
        vstream.width, vstream.height = w, h
        vstream.pix_fmt = "yuv420p"
        opts: dict[str, str] = {}
        if codec == "libx264":
            opts = {"crf": str(crf), "preset": preset}
        elif codec == "libvpx-vp9":
            opts = {"deadline": "realtime", "cpu-used": "8", "crf": "40", "b": "0"}
        if gop is not None:
            vstream.codec_context.gop_size = gop
            if codec == "libx264":
                opts["x264-params"] = f"keyint={gop}:min-keyint={gop}:scenecut=0"
        vstream.codec_context.options = opts
        if rotation is not None:
            vstream.set_display_rotation(rotation)

        astream = None
        audio = _load_audio(audio_wav, duration) if audio_wav is not None else None
        if audio is None and tone_hz is not None:
            audio = (tone(duration, 44100, tone_hz, channels=2), 44100)
        if audio is not None:
            samples, sr = audio
            channels = 1 if samples.ndim == 1 else samples.shape[1]
            if audio_codec == "libopus" and sr not in {8000, 12000, 16000, 24000, 48000}:
                samples, sr = _resample_linear(samples, sr, 48000), 48000
            astream = out.add_stream(audio_codec, rate=sr)
            astream.layout = "mono" if channels == 1 else "stereo"

        frame_no = 0
        for pattern, seconds in scenes:
            base = pattern_array(pattern, size)
            for _ in range(round(seconds * fps)):
                t = frame_no / fps
                img = base
                if motion == "pan":
                    img = np.roll(base, (frame_no * 3, frame_no * 5), axis=(0, 1))
                if motion:
                    img = _moving_square(img, frame_no, fps)
                active = [o for o in overlays if o.start <= t < o.end]
                if active:
                    pil = Image.fromarray(img)
                    for o in active:
                        draw_text(pil, o.text, o.xy, font_size=o.font_size, fill=o.fill, box=o.box)
                    img = np.asarray(pil)
                frame = av.VideoFrame.from_ndarray(img, format="rgb24")
                frame.pts = frame_no
                frame.time_base = Fraction(1, fps)
                out.mux(vstream.encode(frame))
                frame_no += 1
        out.mux(vstream.encode(None))

        if astream is not None and audio is not None:
            _encode_audio(out, astream, *audio)
    return path


def _moving_square(base: np.ndarray, frame_no: int, fps: int) -> np.ndarray:
    h, w = base.shape[:2]
    side = max(4, min(w, h) // 10)
    x = int((frame_no * w / (4 * fps)) % max(1, w - side))
    y = h // 8
    img = base.copy()
    img[y:y + side, x:x + side] = 255 - img[y:y + side, x:x + side]
    return img


def _resample_linear(samples: np.ndarray, sr: int, new_sr: int) -> np.ndarray:
    n = round(len(samples) * new_sr / sr)
    src = np.arange(len(samples))
    dst = np.linspace(0, len(samples) - 1, n)
    if samples.ndim == 1:
        return np.interp(dst, src, samples).astype(np.float32)
    return np.stack([np.interp(dst, src, samples[:, c]) for c in range(samples.shape[1])], 1).astype(
        np.float32)


def _load_audio(path: PathLike, max_seconds: float) -> tuple[np.ndarray, int]:
    """Decode any audio file to float32 ``(n, channels)`` at its own rate, cut to ``max_seconds``."""
    chunks: list[np.ndarray] = []
    with av.open(str(path)) as inp:
        stream = inp.streams.audio[0]
        sr = stream.codec_context.sample_rate
        channels = min(2, stream.codec_context.channels)
        resampler = av.AudioResampler(format="flt", layout="mono" if channels == 1 else "stereo", rate=sr)
        for frame in inp.decode(stream):
            for f in resampler.resample(frame):
                chunks.append(f.to_ndarray().reshape(-1, channels))
    data = np.concatenate(chunks) if chunks else np.zeros((0, channels), np.float32)
    data = data[: round(max_seconds * sr)]
    return (data[:, 0] if channels == 1 else data), sr


def _encode_audio(out: av.container.OutputContainer, astream: av.audio.stream.AudioStream,
                  samples: np.ndarray, sr: int) -> None:
    frame_size = astream.codec_context.frame_size or 1024
    planar = samples.reshape(len(samples), -1).T.astype(np.float32)  # (channels, n)
    layout = "mono" if planar.shape[0] == 1 else "stereo"
    for start in range(0, planar.shape[1], frame_size):
        chunk = np.ascontiguousarray(planar[:, start:start + frame_size])
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
        frame.sample_rate = sr
        frame.pts = start
        frame.time_base = Fraction(1, sr)
        out.mux(astream.encode(frame))
    out.mux(astream.encode(None))


# --------------------------------------------------------------------------- broken files


def truncate_copy(src: PathLike, dst: PathLike, keep: float = 0.5) -> Path:
    """Copy the first ``keep`` fraction of ``src`` into ``dst`` (a truncated download)."""
    data = Path(src).read_bytes()
    dst = Path(dst)
    dst.write_bytes(data[: int(len(data) * keep)])
    return dst


def make_garbage_file(path: PathLike, size: int = 64 * 1024, *, header: bytes = b"", seed: int = 0) -> Path:
    """Random bytes, optionally after a plausible magic ``header`` (e.g. ``b"\\x00\\x00\\x00\\x18ftypmp42"``)."""
    path = Path(path)
    rng = np.random.default_rng(seed)
    path.write_bytes(header + rng.integers(0, 256, size=size, dtype=np.uint8).tobytes())
    return path
