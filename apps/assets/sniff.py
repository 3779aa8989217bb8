"""Type detection from magic bytes (never from the name or the client's header).

Returns the asset kind and a canonical MIME type, or raises :class:`Rejected` with the HTTP
status the API answers (415 unsupported, 422 corrupt/polyglot).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

HEAD = 64 * 1024


class Rejected(Exception):
    """A file that must not enter the library; ``status`` is the HTTP status, ``code`` a stable reason."""

    def __init__(self, status: int, code: str, message: str, detail: dict | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail


@dataclass(frozen=True)
class Sniffed:
    kind: str
    mime: str
    ext: str


# (kind, mime, ext) for each accepted container, keyed by a detector below.
ALLOWED: dict[str, tuple[str, str, str]] = {
    "mp4": ("video", "video/mp4", "mp4"),
    "mov": ("video", "video/quicktime", "mov"),
    "mkv": ("video", "video/x-matroska", "mkv"),
    "webm": ("video", "video/webm", "webm"),
    "avi": ("video", "video/x-msvideo", "avi"),
    "wav": ("audio", "audio/wav", "wav"),
    "mp3": ("audio", "audio/mpeg", "mp3"),
    "flac": ("audio", "audio/flac", "flac"),
    "ogg": ("audio", "audio/ogg", "ogg"),
    "m4a": ("audio", "audio/mp4", "m4a"),
    "jpeg": ("image", "image/jpeg", "jpg"),
    "png": ("image", "image/png", "png"),
    "webp": ("image", "image/webp", "webp"),
    "gif": ("image", "image/gif", "gif"),
    "bmp": ("image", "image/bmp", "bmp"),
    "tiff": ("image", "image/tiff", "tiff"),
    "txt": ("text", "text/plain", "txt"),
    "md": ("text", "text/markdown", "md"),
    "srt": ("text", "application/x-subrip", "srt"),
    "vtt": ("text", "text/vtt", "vtt"),
    "html": ("text", "text/html", "html"),
}
#: The accepted media types, as the upload's OpenAPI ``encoding`` names them for the ``file`` part.
ACCEPTED = ", ".join(sorted({mime for _, mime, _ in ALLOWED.values()}))

_FTYP_BRANDS = {
    "qt  ": "mov",
    "M4A ": "m4a", "M4B ": "m4a", "M4P ": "m4a", "F4A ": "m4a",
}
_KNOWN_BINARY = [
    (b"%PDF-", "PDF document"), (b"PK\x03\x04", "ZIP archive"), (b"\x7fELF", "ELF executable"),
    (b"MZ", "Windows executable"), (b"\x1f\x8b", "gzip archive"), (b"Rar!", "RAR archive"),
    (b"7z\xbc\xaf\x27\x1c", "7-Zip archive"), (b"\xca\xfe\xba\xbe", "Mach-O/Java class"),
]
# Markers of a second format hidden inside media (polyglots).
_EMBEDDED = [
    (re.compile(rb"<script", re.I), "an HTML <script> element"),
    (re.compile(rb"<\?php", re.I), "PHP code"),
    (re.compile(rb"<html", re.I), "an HTML document"),
    (re.compile(rb"PK\x03\x04[\x0a\x14]\x00"), "a ZIP archive"),
    (re.compile(rb"%PDF-1\.\d"), "a PDF document"),
]


def _container(head: bytes) -> str | None:
    """Name of the container from its signature, or None."""
    if head[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    if head[:2] == b"BM" and len(head) > 14 and int.from_bytes(head[2:6], "little") > 26:
        return "bmp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mp3"
    if head[4:8] == b"ftyp":
        brand = head[8:12].decode("latin-1")
        return _FTYP_BRANDS.get(brand, "mp4")
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "webm" if b"webm" in head[:64] else "mkv"
    return None


def _text_type(data: bytes, filename: str) -> str | None:
    """Subtype of a text file, or None when the bytes are not text."""
    if b"\x00" in data:
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(data) - 4:  # a cut multi-byte char at the very end of the head is fine
            return None
        text = data[: e.start].decode("utf-8")
    if not text.strip():
        return None
    controls = sum(1 for c in text if ord(c) < 32 and c not in "\t\n\r\f")
    if controls > len(text) * 0.01:
        return None
    stripped = text.lstrip("\ufeff \t\r\n")
    if stripped.startswith("WEBVTT"):
        return "vtt"
    if re.match(r"\d+\s*\r?\n\d\d:\d\d:\d\d,\d{3} --> \d\d:\d\d:\d\d,\d{3}", stripped):
        return "srt"
    if re.match(r"(<!doctype html|<html)", stripped, re.I):
        return "html"
    if Path(filename).suffix.lower() in {".md", ".markdown"}:
        return "md"  # markdown is plain text; only the name tells them apart
    return "txt"


def _polyglot(path: Path, container: str, size: int) -> str | None:
    """Describe a second format embedded in a media file, if any."""
    with path.open("rb") as f:
        head = f.read(HEAD)
        f.seek(max(size - HEAD, 0))
        tail = f.read(HEAD)
    for pattern, what in _EMBEDDED:
        if pattern.search(head[16:]) or pattern.search(tail):
            return what
    if container == "jpeg":
        end = tail.rfind(b"\xff\xd9")
        if end != -1 and len(tail) - (end + 2) > 1024:
            return f"{len(tail) - end - 2} bytes of data after the JPEG end marker"
    if container == "png":
        end = tail.rfind(b"IEND\xaeB`\x82")
        if end != -1 and len(tail) - (end + 8) > 16:
            return f"{len(tail) - end - 8} bytes of data after the PNG end chunk"
    return None


def sniff(path: str | Path, filename: str = "") -> Sniffed:
    """Detect the type of the file at ``path``; raise :class:`Rejected` for anything not accepted."""
    p = Path(path)
    size = p.stat().st_size
    if size == 0:
        raise Rejected(422, "empty", "The file is empty.")
    with p.open("rb") as f:
        head = f.read(HEAD)
    container = _container(head)
    if container is None:
        for magic, what in _KNOWN_BINARY:
            if head.startswith(magic):
                raise Rejected(415, "unsupported_type", f"Unsupported file type: {what}.")
        container = _text_type(head, filename)
        if container is None:
            raise Rejected(415, "unsupported_type", "Unsupported file type: the content is not a known "
                                                    "video, audio, image or text format.")
        if container == "html" or container == "txt":
            pass
    elif (what := _polyglot(p, container, size)) is not None:
        raise Rejected(422, "polyglot", f"The {container} file also contains {what}; polyglot files are refused.")
    kind, mime, ext = ALLOWED[container]
    return Sniffed(kind=kind, mime=mime, ext=ext)


# Declared types (file extension or Content-Type) that name binary media: such a file whose
# bytes are text (a script, a page) is refused with both types named.
_BINARY_EXTENSIONS = {
    "video": {"mp4", "m4v", "mov", "qt", "mkv", "webm", "avi", "wmv", "flv", "mpg", "mpeg", "3gp", "ts", "mts"},
    "audio": {"mp3", "wav", "flac", "ogg", "oga", "opus", "m4a", "aac", "wma", "aif", "aiff"},
    "image": {"jpg", "jpeg", "jpe", "png", "gif", "webp", "bmp", "tif", "tiff", "heic", "heif", "avif"},
}
_TEXTUAL_MEDIA_TYPES = {"image/svg+xml"}


def declared_binary(filename: str, content_type: str = "") -> str | None:
    """What the client declared, when it names binary media (``".mp4" name``, ``video/mp4``), else None."""
    ext = Path(filename).suffix.lower().lstrip(".")
    for family, exts in _BINARY_EXTENSIONS.items():
        if ext in exts:
            return f'{family} (the name ends in ".{ext}")'
    ctype = content_type.split(";", 1)[0].strip().lower()
    if ctype.split("/", 1)[0] in _BINARY_EXTENSIONS and ctype not in _TEXTUAL_MEDIA_TYPES:
        return f"{ctype.split('/', 1)[0]} (Content-Type {ctype})"
    return None


def check_declared(sniffed: Sniffed, filename: str, content_type: str = "") -> None:
    """Refuse (415) a file declared as binary media whose bytes are text or script."""
    if sniffed.kind != "text":
        return
    declared = declared_binary(filename, content_type)
    if declared is not None:
        raise Rejected(415, "type_mismatch", f"The file is declared as {declared} but its content is text "
                                             f"({sniffed.mime}); it was not accepted.",
                       detail={"declared": declared, "detected": sniffed.mime})


_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]+")


def sanitize_filename(name: str, limit: int = 200) -> str:
    """A display-only filename: no path parts, no control or reserved characters, no leading dots.

    Unicode letters are kept (NFC); the result is never used as a storage path.
    """
    import unicodedata

    name = unicodedata.normalize("NFC", name or "")
    name = name.replace("\\", "/").split("/")[-1]
    name = _UNSAFE.sub("_", name).strip(" ._")
    name = re.sub(r"\.{2,}", ".", name)
    if len(name) > limit:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: limit - len(ext) - 1] + "." + ext) if dot and len(ext) < 16 else name[:limit]
    return name or "upload"
