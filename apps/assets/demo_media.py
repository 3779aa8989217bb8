"""A small, generated demo library: a video with speech and on-screen text, an audio clip,
images and a text. Generated once (deterministically) into a directory and reused."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import wave
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

SPEECH = ("Welcome to the harbour festival. Boats arrive at noon, and the lighthouse tour "
          "starts at three o'clock. Please keep the quay clear for the parade.")
SCENES = [((22, 60, 110), "HARBOUR FESTIVAL"), ((120, 40, 30), "LIGHTHOUSE TOUR 3PM"),
          ((30, 100, 50), "KEEP THE QUAY CLEAR")]
TEXT = """# Festival notes

The harbour festival opens on Saturday. Food stalls line the quay and the brass band plays
at the lighthouse in the afternoon.

Volunteers meet at the ferry terminal at eight.
"""


def _font(size: int) -> ImageFont.ImageFont:
    for path in ("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
                 "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"):
        if Path(path).exists():
            return ImageFont.truetype(path, size)
    return ImageFont.load_default(size=size)


def _card(color: tuple[int, int, int], text: str, size: tuple[int, int]) -> Image.Image:
    img = Image.new("RGB", size, color)
    d = ImageDraw.Draw(img)
    rng = np.random.default_rng(sum(color))
    for _ in range(30):  # some texture so scenes are not flat
        x, y = int(rng.integers(0, size[0])), int(rng.integers(0, size[1]))
        d.ellipse((x, y, x + 40, y + 40), fill=tuple(min(255, c + 40) for c in color))
    font = _font(size[1] // 10)
    w = d.textlength(text, font=font)
    top, bottom = size[1] * 0.4 - 10, size[1] * 0.4 + size[1] // 10 + 20
    d.rectangle((size[0] / 2 - w / 2 - 20, top, size[0] / 2 + w / 2 + 20, bottom), fill=(250, 250, 250))
    d.text((size[0] / 2 - w / 2, size[1] * 0.4), text, fill=(10, 10, 10), font=font)
    return img


def speech_wav(path: Path, text: str = SPEECH) -> Path | None:
    """16 kHz mono speech from espeak-ng (None when espeak-ng is not installed)."""
    exe = shutil.which("espeak-ng")
    if not exe:
        return None
    with tempfile.TemporaryDirectory() as d:
        raw = Path(d) / "raw.wav"
        subprocess.run([exe, "-v", "en-us", "-s", "150", "-w", str(raw), text], check=True, capture_output=True)
        with wave.open(str(raw)) as w:
            sr, data = w.getframerate(), np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    idx = np.arange(0, len(data) * 16000 // sr) * sr / 16000
    resampled = np.interp(idx, np.arange(len(data)), data.astype(np.float32)).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(resampled.tobytes())
    return path


def video(path: Path, wav: Path | None, size: tuple[int, int] = (1280, 720), fps: int = 25) -> Path:
    """Three captioned scenes; the speech track (if any) decides the length."""
    import av

    samples = np.zeros(16000 * 9, dtype="<i2")
    if wav is not None:
        with wave.open(str(wav)) as w:
            samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    seconds = max(len(samples) / 16000, 6.0)
    frames = int(seconds * fps)
    cards = [np.asarray(_card(c, t, size)) for c, t in SCENES]
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=fps, options={"preset": "veryfast", "crf": "26", "threads": "1"})
        vs.width, vs.height, vs.pix_fmt = size[0], size[1], "yuv420p"
        aus = out.add_stream("aac", rate=16000, layout="mono")
        for i in range(frames):
            card = cards[min(i * len(cards) // frames, len(cards) - 1)]
            frame = av.VideoFrame.from_ndarray(card, format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            for pkt in vs.encode(frame):
                out.mux(pkt)
        for pkt in vs.encode():
            out.mux(pkt)
        chunk = 1024
        for start in range(0, len(samples), chunk):
            af = av.AudioFrame.from_ndarray(samples[start:start + chunk].reshape(1, -1), format="s16", layout="mono")
            af.sample_rate = 16000
            af.pts = start
            for pkt in aus.encode(af):
                out.mux(pkt)
        for pkt in aus.encode():
            out.mux(pkt)
    return path


def generate(directory: Path) -> list[Path]:
    """Write the demo set into ``directory`` (kept: later runs reuse the same bytes)."""
    directory.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    wav = directory / "announcement.wav"
    if not wav.exists() and speech_wav(wav) is None:
        wav = None  # type: ignore[assignment]
    if wav is not None:
        files.append(wav)
    clip = directory / "festival.mp4"
    if not clip.exists():
        video(clip, wav)
    files.append(clip)
    for i, (color, text) in enumerate(SCENES):
        img = directory / f"poster-{i + 1}.png"
        if not img.exists():
            _card(color, text, (960, 540)).save(img)
        files.append(img)
    notes = directory / "festival-notes.md"
    if not notes.exists():
        notes.write_text(TEXT)
    files.append(notes)
    return files
