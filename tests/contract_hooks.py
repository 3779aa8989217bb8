"""schemathesis hooks for ``tests/test_api_contract.py`` (loaded through ``SCHEMATHESIS_HOOKS``).

They teach the generator what the schema states but cannot make it produce, and nothing else:

* **Media content.** The schema names, for each file part and raw body, the media types the
  server takes (OpenAPI ``encoding.contentType``: ``image/*`` for a similarity query, the sniffer's
  list for an upload, ``text/csv`` for a bank import; ``application/yaml`` for a policy document).
  schemathesis draws such content from strategies registered per media type
  (``schemathesis.openapi.media_type``), and without one it sends random bytes, which the server
  rightly refuses as not media. The strategies below make real files of those types: PNG and
  JPEG images, WAV audio, MP4 video, UTF-8 text, CSV rows, YAML policy documents, each drawn
  afresh (sizes, colours, tones, rows, thresholds), the video from a few clips made once.
* **The one rule of a policy JSON Schema cannot state.** A category's ``block`` threshold is not
  below its ``review`` threshold (the schema says so in words). Where a generated, otherwise
  valid rules document has them the other way round, the two are swapped. Unknown category codes
  are left alone: the server answers them with 409, which the run accepts for valid data.
  Where schemathesis draws a file part from its schema instead (some coverage and stateful cases
  do, then sending the schema's bytes under the first listed type), a valid case's part is
  replaced by a drawn PNG image or CSV row and labelled so.
* **A JSON object's text in a query parameter.** A raw upload's ``metadata`` parameter is such a
  text (``contentMediaType: application/json``, ``contentSchema`` an object); a valid case whose
  drawn text is not one gets a JSON object holding it.
* **A YAML document inside JSON.** ``POST /policies/import/`` in JSON carries the document as the
  string ``yaml`` (``contentMediaType: application/yaml``); a valid case gets a drawn document.
* **Webhook targets.** Every target the run could make the server contact is the test's local
  receiver: a generated subscription ``url`` that is an http(s) URL with a host is replaced by
  ``MEDIAINTEL_CONTRACT_RECEIVER`` (a URL on 127.0.0.1); any other value is left as generated, so
  an invalid one still tests the refusal.

Invalid (negative) cases are never changed: the server must still refuse each of them.
"""

from __future__ import annotations

import io
import json
import math
import os
import random
import struct
import subprocess
import tempfile
import wave
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import schemathesis
import yaml
from hypothesis import strategies as st
from PIL import Image

from apps.moderation.taxonomy import TAXONOMY

CATEGORIES = [code for code, *_ in TAXONOMY]
SOURCES = ["text", "speech", "image", "ocr"]


# --------------------------------------------------------------------------- media strategies
def _image(rng: random.Random, fmt: str) -> bytes:
    """A small image: a background colour and a few rectangles of other colours."""
    w, h = rng.randint(16, 96), rng.randint(16, 96)
    img = Image.new("RGB", (w, h), tuple(rng.choices(range(256), k=3)))
    for _ in range(rng.randint(0, 4)):
        x0, y0 = rng.randrange(w), rng.randrange(h)
        img.paste(tuple(rng.choices(range(256), k=3)), (x0, y0, rng.randint(x0, w), rng.randint(y0, h)))
    out = io.BytesIO()
    img.save(out, fmt)
    return out.getvalue()


def images(fmt: str) -> st.SearchStrategy[bytes]:
    return st.randoms(use_true_random=False).map(lambda rng: _image(rng, fmt))


@st.composite
def wavs(draw: st.DrawFn) -> bytes:
    """A mono 16 kHz sine tone of 0.2–1 s."""
    rate, seconds, freq = 16000, draw(st.floats(0.2, 1.0)), draw(st.floats(100.0, 2000.0))
    n = int(rate * seconds)
    phase = 2 * math.pi * freq / rate
    samples = b"".join(struct.pack("<h", int(12000 * math.sin(phase * i))) for i in range(n))
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples)
    return out.getvalue()


#: ffmpeg arguments of a one-second clip per accepted audio and video type (sniff.ALLOWED)
_CLIPS = {
    "video/mp4": ("mp4", ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]),
    "video/quicktime": ("mov", ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]),
    "video/x-matroska": ("mkv", ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]),
    "video/webm": ("webm", ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8"]),
    "video/x-msvideo": ("avi", ["-c:v", "mpeg4"]),
    "audio/mpeg": ("mp3", ["-c:a", "libmp3lame"]),
    "audio/flac": ("flac", ["-c:a", "flac"]),
    "audio/ogg": ("ogg", ["-c:a", "libvorbis"]),
    "audio/mp4": ("m4a", ["-c:a", "aac"]),
}
_SOURCES = {"video": ["testsrc=size=96x64:rate=10", "smptebars=size=96x64:rate=10"],
            "audio": ["sine=frequency=440:sample_rate=16000", "sine=frequency=1250:sample_rate=16000"]}


def _clips(media_type: str) -> list[bytes]:
    """Two one-second clips of ``media_type`` (ffmpeg's test sources), made once per run."""
    ext, codec = _CLIPS[media_type]
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, source in enumerate(_SOURCES[media_type.split("/")[0]]):
            path = Path(tmp) / f"{i}.{ext}"
            subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"{source}:duration=1", *codec,
                            "-y", str(path)], check=True, timeout=60)
            out.append(path.read_bytes())
    return out


def _words(draw: st.DrawFn) -> str:
    return draw(st.text(st.characters(codec="utf-8", categories=["L", "N", "P", "Zs"]), min_size=1, max_size=200)
                .filter(str.strip))


@st.composite
def subtitles(draw: st.DrawFn, vtt: bool) -> bytes:
    sep = "." if vtt else ","
    cues = [f"{i + 1}\n00:00:0{i},000 --> 00:00:0{i},900\n{_words(draw)}\n".replace(",", sep, 2)
            for i in range(draw(st.integers(1, 3)))]
    return (("WEBVTT\n\n" if vtt else "") + "\n".join(cues)).encode()


texts = st.text(st.characters(codec="utf-8", categories=["L", "N", "P", "Zs"]), min_size=1, max_size=400) \
    .filter(str.strip).map(str.encode)
markdown = st.builds(lambda title, body: f"# {title}\n\n{body}\n".encode(), texts.map(bytes.decode),
                     texts.map(bytes.decode))
html = texts.map(lambda t: b"<!doctype html><html><body><p>" + t.replace(b"<", b"&lt;") + b"</p></body></html>")
videos = st.sampled_from(_clips("video/mp4"))

hex_hash = st.text("0123456789abcdef", min_size=64, max_size=64)
csv_row = st.one_of(
    st.tuples(hex_hash, st.integers(0, 100), st.from_regex(r"[a-z ]{0,20}", fullmatch=True))
    .map(lambda r: f"{r[0]},{r[1]},{r[2]}"),
    st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=80),  # malformed: listed, not fatal
)
csvs = st.lists(csv_row, max_size=8).map(lambda rows: "\n".join(rows).encode())


def _document(rng: random.Random) -> str:
    """A valid policy document: known categories, block not below review, optional weights."""
    cats = {}
    for code in rng.sample(CATEGORIES, rng.randint(1, 5)):
        review, block = sorted((round(rng.uniform(0, 1.01), 3), round(rng.uniform(0, 1.01), 3)))
        rule: dict[str, Any] = {"review": review, "block": block}
        if rng.random() < 0.5:
            rule["weights"] = {src: round(rng.uniform(0, 5), 2) for src in rng.sample(SOURCES, rng.randint(0, 3))}
        cats[code] = rule
    name = "p-" + "".join(rng.choices("abcdefghij0123456789", k=rng.randint(1, 8)))
    return yaml.safe_dump({"policy": name, "note": "contract run", "rules": {"categories": cats,
                                                                          "bank_on_reject": None}})


policy_documents = st.randoms(use_true_random=False).map(_document)

# every media type the schema names for an upload's file part, and the raw bodies
for pil_format, media_type in (("PNG", "image/png"), ("JPEG", "image/jpeg"), ("GIF", "image/gif"),
                               ("WEBP", "image/webp"), ("BMP", "image/bmp"), ("TIFF", "image/tiff")):
    schemathesis.openapi.media_type(media_type, images(pil_format))
for media_type in _CLIPS:
    schemathesis.openapi.media_type(media_type,
                                    videos if media_type == "video/mp4" else st.sampled_from(_clips(media_type)))
schemathesis.openapi.media_type("audio/wav", wavs())
schemathesis.openapi.media_type("text/plain", texts)
schemathesis.openapi.media_type("text/markdown", markdown)
schemathesis.openapi.media_type("text/html", html)
schemathesis.openapi.media_type("text/vtt", subtitles(vtt=True))
schemathesis.openapi.media_type("application/x-subrip", subtitles(vtt=False))
schemathesis.openapi.media_type("text/csv", csvs)
schemathesis.openapi.media_type("application/yaml", policy_documents.map(str.encode),
                                aliases=["application/x-yaml", "text/yaml"])
schemathesis.openapi.media_type("application/octet-stream", st.one_of(images("PNG"), wavs(), videos, texts))


# --------------------------------------------------------------------------- case adjustments
def _sendable(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        parts = urlsplit(value)
        return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
    except ValueError:
        return False


def _positive(case: Any) -> bool:
    meta = getattr(case, "meta", None)
    return meta is not None and meta.generation.mode.is_positive


def _ordered_thresholds(body: dict[str, Any]) -> None:
    cats = body.get("rules", {}).get("categories") if isinstance(body.get("rules"), dict) else None
    for rule in (cats or {}).values() if isinstance(cats, dict) else ():
        if isinstance(rule, dict) and all(isinstance(rule.get(k), int | float) for k in ("review", "block")) \
                and rule["block"] < rule["review"]:
            rule["review"], rule["block"] = rule["block"], rule["review"]


#: a file part's media type and content when schemathesis drew the part from its schema rather than
#: from a registered strategy (it then sends the schema's bytes as the first listed type)
_FALLBACK_PARTS = {"/api/v1/assets/": "image/png", "/api/v1/search/similar/": "image/png",
                   "/api/v1/hash-banks/{id}/import/": "text/csv"}


def _fallback_content(media_type: str, rng: random.Random) -> bytes:
    if media_type == "text/csv":
        return f"{rng.getrandbits(256):064x},{rng.randint(0, 100)},row".encode()
    return _image(rng, "PNG")


def _media_part(case: Any, body: dict[str, Any]) -> None:
    media_type = _FALLBACK_PARTS.get(case.operation.path)
    chosen = case.multipart_content_types or {}
    if media_type is None or "file" in chosen or not isinstance(body.get("file"), bytes | str):
        return
    rng = random.Random(repr(body["file"]))  # the same generated case gets the same file
    body["file"] = _fallback_content(media_type, rng)
    object.__setattr__(case, "multipart_content_types", {**chosen, "file": media_type})
    # one valid file for another: the case stays valid. schemathesis re-judges an edited body, and
    # judges any body holding bytes invalid (it cannot validate them), so the edit is taken as the
    # case's starting state
    case._sync_validated_hashes()


@schemathesis.hook
def before_call(context: Any, case: Any, **kwargs: Any) -> None:
    """Applied to every case of every phase, just before it is sent."""
    path, body = case.operation.path, case.body
    if "/webhooks/" in path and isinstance(body, dict) and _sendable(body.get("url")):
        case.body = {**body, "url": os.environ["MEDIAINTEL_CONTRACT_RECEIVER"]}
    if _positive(case) and path == "/api/v1/assets/" and isinstance(case.query, dict) \
            and isinstance(case.query.get("metadata"), str) and not _json_object_text(case.query["metadata"]):
        # the parameter is a JSON object's text (contentMediaType application/json, contentSchema
        # object), which schemathesis does not draw: a valid case gets one
        case.query["metadata"] = json.dumps({"note": case.query["metadata"]})
    if not _positive(case) or not isinstance(body, dict):
        return
    if case.media_type == "multipart/form-data":
        _media_part(case, body)
    if path.endswith("/versions/") and case.method == "POST":
        _ordered_thresholds(body)
    elif path.endswith("/policies/import/") and case.method == "POST" and isinstance(body.get("yaml"), str):
        rng = random.Random(body["yaml"])  # the same generated case gets the same document
        body["yaml"] = _document(rng)


def _json_object_text(text: str) -> bool:
    try:
        return not text.strip() or isinstance(json.loads(text), dict)
    except ValueError:
        return False
