"""The shipped evaluation set, generated on demand (licence-clean, nothing downloaded).

* speech: sentences written for the project, read by ``espeak-ng`` voices (English, German, French);
* slides: text rendered with DejaVu (Debian ``fonts-dejavu``), one carrying a threat;
* a video with colour/texture scenes cut at known times;
* photos from the Debian ``darknet`` package (``/usr/share/darknet/data``, MIT), with hand-drawn
  boxes on one of them; skipped when the package is not installed;
* near-duplicates of the photos and slides (half size, JPEG quality 35) and unrelated images;
* short texts written for the project with their moderation labels.

:func:`generate` writes the media and ``manifest.json`` into a folder and returns its path; the
same call on the same machine writes the same ground truth.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path
from typing import Any

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
PHOTOS = Path("/usr/share/darknet/data")

SPEECH = (
    ("en", "en", "The museum opens at nine and the guided tour starts in the east wing."),
    ("en-us", "en", "Please remember to water the plants on Tuesday morning."),
    ("en-gb-x-rp", "en", "Our train leaves the station at half past seven every evening."),
    ("de", "de", "Guten Morgen, das Wetter ist heute schön und warm."),
    ("fr", "fr", "Bonjour, nous allons au marché acheter du pain."),
)

SLIDES = (
    ("Quarterly results\nRevenue grew by twelve percent", {"harassment/threat": False}),
    ("Welcome to the annual meeting\nPlease take a seat", {"harassment/threat": False}),
    ("I will kill you tomorrow\nwatch your back", {"harassment/threat": True}),
)

#: text categories the samples below are labelled on (each sample: true for its own, false otherwise)
TEXT_LABELS = ("profanity", "harassment/insult", "harassment/threat", "self_harm", "spam/links")
TEXTS = (
    ("weather", "en", None, "The weather will be sunny tomorrow with a light breeze from the west."),
    ("recipe", "en", None, "Mix the flour with two eggs and bake the cake for forty minutes."),
    ("whale", "en", None, "The killer whale show at the aquarium was a blast for the whole family."),
    ("de-news", "de", None, "Die Stadt baut eine neue Brücke über den Fluss im Norden."),
    ("fr-news", "fr", None, "Le musée présente une nouvelle exposition de peintures anciennes."),
    ("es-news", "es", None, "El tren sale de la estación central cada mañana a las ocho."),
    ("threat", "en", "harassment/threat", "I am going to kill you if you show up here again."),
    ("insult", "en", "harassment/insult", "You are a pathetic idiot and everyone knows it."),
    ("profanity", "en", "profanity", "This fucking printer jammed again, what a load of shit."),
    ("spam", "en", "spam/links", "Cheap watches at http://deals.example.xyz and www.best-offers.biz order now"),
    ("self-harm", "en", "self_harm", "I want to kill myself tonight, nothing matters any more."),
)

#: (file, COCO labels with optional boxes [x1, y1, x2, y2] as fractions, tags expected among the top k)
PHOTO_LABELS: tuple[tuple[str, list[dict[str, Any]], list[str]], ...] = (
    ("dog.jpg", [{"label": "bicycle", "box": [0.17, 0.24, 0.74, 0.73]},
                 {"label": "dog", "box": [0.17, 0.38, 0.40, 0.92]},
                 {"label": "truck", "box": [0.61, 0.13, 0.90, 0.29]},
                 {"label": "motorcycle", "box": [0.07, 0.12, 0.15, 0.22]}], ["bicycle"]),
    ("eagle.jpg", [{"label": "bird"}], ["eagle"]),
    ("giraffe.jpg", [{"label": "giraffe"}, {"label": "zebra"}], ["zebra"]),
    ("horses.jpg", [{"label": "horse"}], ["sorrel"]),
    ("person.jpg", [{"label": "person"}, {"label": "dog"}, {"label": "horse"}], []),
)

#: video scenes: (pattern, seconds); cuts fall at the running sums
SCENES = (("red", 1.6), ("noise:1", 1.6), ("#2040c0", 1.6), ("checker", 1.6))
NOT_NUDE = {"sexual/explicit_nudity": False, "violence/weapons": False}


def _speech(path: Path, text: str, voice: str) -> None:
    subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(path), text], check=True,
                   capture_output=True, timeout=60)


def _slide(path: Path, text: str, size: tuple[int, int] = (960, 540)) -> None:
    from PIL import Image, ImageDraw, ImageFont

    img = Image.new("RGB", size, (250, 250, 245))
    draw = ImageDraw.Draw(img)
    font = ImageFont.truetype(FONT, 44) if Path(FONT).exists() else ImageFont.load_default(44)
    draw.rectangle([0, 0, size[0], 24], fill=(30, 60, 140))
    draw.multiline_text((60, 140), text, fill=(20, 20, 20), font=font, spacing=28)
    img.save(path)


def _pattern(name: str, w: int, h: int) -> Any:
    import numpy as np
    from PIL import ImageColor

    kind, _, arg = name.partition(":")
    if kind == "noise":
        rng = np.random.default_rng(int(arg or 0))
        small = rng.integers(0, 256, size=(h // 16 + 1, w // 16 + 1, 3), dtype=np.uint8)
        return np.repeat(np.repeat(small, 16, 0), 16, 1)[:h, :w].copy()
    if kind == "checker":
        yy, xx = np.mgrid[0:h, 0:w]
        return (((yy // 30 + xx // 30) % 2) * 230 + 20).astype(np.uint8)[..., None].repeat(3, 2)
    return np.broadcast_to(np.array(ImageColor.getrgb(name), np.uint8), (h, w, 3)).copy()


def _video(path: Path, w: int = 320, h: int = 240, fps: int = 25) -> list[float]:
    import av

    cuts, t = [], 0.0
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.time_base = Fraction(1, fps)
        n = 0
        for i, (pattern, seconds) in enumerate(SCENES):
            if i:
                cuts.append(round(t, 3))
            arr = _pattern(pattern, w, h)
            for _ in range(round(seconds * fps)):
                frame = av.VideoFrame.from_ndarray(arr, format="rgb24")
                frame.pts = n
                n += 1
                out.mux(stream.encode(frame))
            t += seconds
        out.mux(stream.encode(None))
    return cuts


def _near_duplicate(src: Path, dst: Path) -> None:
    from PIL import Image

    with Image.open(src) as im:
        small = im.convert("RGB").resize((max(1, im.width // 2), max(1, im.height // 2)), Image.Resampling.LANCZOS)
        small.save(dst, "JPEG", quality=35)


def _noise_image(path: Path, seed: int) -> None:
    from PIL import Image

    Image.fromarray(_pattern(f"noise:{seed}", 480, 360)).save(path)


def generate(folder: str | Path, *, photos: Path = PHOTOS) -> Path:
    """Write the set into ``folder`` (created; files already there are overwritten) and return it."""
    root = Path(folder)
    for sub in ("speech", "slides", "video", "photos", "near", "text"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    items: list[dict[str, Any]] = []
    pairs: list[list[str]] = []
    if shutil.which("espeak-ng"):
        for n, (voice, lang, text) in enumerate(SPEECH):
            rel = f"speech/{lang}-{n}.wav"
            _speech(root / rel, text, voice)
            items.append({"file": rel, "kind": "audio", "transcript": text, "language": lang})
    for n, (text, labels) in enumerate(SLIDES):
        rel = f"slides/slide-{n}.png"
        _slide(root / rel, text)
        items.append({"file": rel, "kind": "image", "ocr_text": text, "moderation": {**NOT_NUDE, **labels}})
        near = f"near/slide-{n}-small.jpg"
        _near_duplicate(root / rel, root / near)
        items.append({"file": near, "kind": "image"})
        pairs.append([rel, near])
    cuts = _video(root / "video/scenes.mp4")
    items.append({"file": "video/scenes.mp4", "kind": "video", "cuts": cuts})
    for name, objects, tags in PHOTO_LABELS:
        if not (photos / name).is_file():
            continue
        rel = f"photos/{name}"
        shutil.copyfile(photos / name, root / rel)
        item: dict[str, Any] = {"file": rel, "kind": "image", "objects": objects, "moderation": dict(NOT_NUDE)}
        if tags:
            item["tags"] = tags
        items.append(item)
        near = f"near/{Path(name).stem}-small.jpg"
        _near_duplicate(root / rel, root / near)
        items.append({"file": near, "kind": "image"})
        pairs.append([rel, near])
    for seed in (7, 8):
        rel = f"near/unrelated-{seed}.png"
        _noise_image(root / rel, seed)
        items.append({"file": rel, "kind": "image"})
    for name, lang, category, text in TEXTS:
        rel = f"text/{name}.txt"
        (root / rel).write_text(text + "\n", encoding="utf-8")
        items.append({"file": rel, "kind": "text", "language": lang,
                      "moderation": {c: c == category for c in TEXT_LABELS}})
    manifest = {
        "name": "mediaintel-shipped",
        "licence": "Generated by MediaIntel (speech: espeak-ng; text and slides written for the project); "
                   "photos: Debian package darknet, /usr/share/darknet/data (MIT licence option).",
        "items": items,
        "near_duplicates": pairs,
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return root
