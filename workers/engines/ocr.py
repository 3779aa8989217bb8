"""OCR: Tesseract (tesserocr in-process, pytesseract fallback) and an optional RapidOCR engine.

Confidences are 0..1 on every engine. Tesseract reads an image twice when the first pass is weak:
raw greyscale, then a preprocessed copy (upscaled so text lines are ~32 px tall, contrast
stretched, Otsu-binarised, dark text on light ground); the result with the better mean confidence
wins. Boxes are always in the input image's pixel coordinates. :func:`merge_over_time` turns
per-keyframe results into time spans of on-screen text.
"""

from __future__ import annotations

import difflib
import hashlib
import math
import os
import re
import threading
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image, ImageOps

from workers.engines.base import (
    EngineInfo,
    EngineUnavailable,
    PermanentEngineError,
    cached_engine,
    pick_device,
    weights_fingerprint,
)
from workers.engines.device import onnx_session_device, resolve_device

ImageInput = Image.Image | np.ndarray | str | Path
Box = tuple[int, int, int, int]

TESSDATA_CANDIDATES = (
    "/usr/share/tesseract-ocr/5/tessdata/",
    "/usr/share/tesseract-ocr/4.00/tessdata/",
    "/usr/share/tessdata/",
    "/usr/local/share/tessdata/",
)


@dataclass(frozen=True)
class OcrLine:
    """One text line: its text, confidence (0..1) and box ``(x, y, w, h)`` in input pixels."""

    text: str
    confidence: float
    box: Box


@dataclass(frozen=True)
class OcrResult:
    """Text of an image (lines joined by ``\\n``), length-weighted mean confidence, and lines."""

    text: str
    confidence: float
    lines: list[OcrLine] = field(default_factory=list)
    variant: str = "raw"

    @classmethod
    def from_lines(cls, lines: list[OcrLine], variant: str = "raw") -> OcrResult:
        """Build a result from lines, weighting confidence by line length."""
        lines = [ln for ln in lines if ln.text.strip()]
        weight = sum(len(ln.text) for ln in lines)
        conf = sum(ln.confidence * len(ln.text) for ln in lines) / weight if weight else 0.0
        return cls("\n".join(ln.text for ln in lines), conf, lines, variant)


@dataclass(frozen=True)
class OcrSpan:
    """Text seen on screen from ``start`` to ``end`` (times of the first/last keyframe showing it)."""

    text: str
    start: float
    end: float
    confidence: float
    count: int = 1


# --------------------------------------------------------------------------- helpers


def as_pil(image: ImageInput) -> Image.Image:
    """PIL RGB/L image from a PIL image, an RGB/grey array, or a path (EXIF orientation applied)."""
    if isinstance(image, (str, Path)):
        from workers.engines.decode import load_image

        return load_image(image)
    if isinstance(image, np.ndarray):
        return Image.fromarray(np.ascontiguousarray(image.astype(np.uint8, copy=False)))
    if image.mode not in {"RGB", "L"}:
        return image.convert("RGB")
    return image


def otsu_threshold(gray: np.ndarray) -> int:
    """Otsu's threshold of a uint8 greyscale array."""
    hist = np.bincount(gray.ravel(), minlength=256).astype(np.float64)
    total = hist.sum()
    if total == 0:
        return 128
    levels = np.arange(256, dtype=np.float64)
    w0 = np.cumsum(hist)
    m0 = np.cumsum(hist * levels)
    w1 = total - w0
    mean_all = m0[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mean_all * w0 - m0 * total) ** 2 / (w0 * w1)
    between[~np.isfinite(between)] = 0
    return int(np.argmax(between))


def preprocess(image: Image.Image, scale: float = 2.0) -> Image.Image:
    """Greyscale, upscale by ``scale``, stretch contrast, Otsu-binarise; dark text on light ground."""
    gray = image.convert("L")
    if scale != 1.0:
        size = (max(1, round(gray.width * scale)), max(1, round(gray.height * scale)))
        gray = gray.resize(size, Image.Resampling.LANCZOS)
    gray = ImageOps.autocontrast(gray, cutoff=1)
    arr = np.asarray(gray)
    binary = arr > otsu_threshold(arr)
    if binary.mean() < 0.5:  # mostly dark: light text on dark ground
        binary = ~binary
    return Image.fromarray((binary * 255).astype(np.uint8))


def _scale_for(image: Image.Image, line_heights: list[int], target: int = 32, max_scale: float = 4.0) -> float:
    """Upscale factor bringing the median text line to ``target`` px (size-based guess if none)."""
    if line_heights:
        median = float(np.median(line_heights))
        return float(min(max_scale, max(1.0, math.ceil(target / max(median, 1.0) * 2) / 2)))
    longest = max(image.size)  # nothing read: upscale small images, only binarise big ones
    return 3.0 if longest < 500 else 2.0 if longest < 1000 else 1.0


def find_tessdata(lang: str, tessdata: str | os.PathLike[str] | None = None) -> str:
    """Tessdata directory (with trailing ``/``) holding every language of ``lang`` (``eng+deu``)."""
    candidates = [str(tessdata)] if tessdata else []
    if os.environ.get("TESSDATA_PREFIX"):
        candidates.append(os.environ["TESSDATA_PREFIX"])
    candidates.extend(TESSDATA_CANDIDATES)
    langs = [code.lstrip("~") for code in lang.split("+") if code]
    for directory in candidates:
        if all(Path(directory, f"{code}.traineddata").is_file() for code in langs):
            return str(Path(directory)) + "/"
    raise EngineUnavailable(
        f"tesseract language data for {lang!r} not found (looked in {', '.join(candidates)}); "
        f"install tesseract-ocr-<lang> or set TESSDATA_PREFIX"
    )


# --------------------------------------------------------------------------- tesseract


class TesseractOcr:
    """Tesseract OCR. ``lang`` like ``"eng"`` or ``"eng+deu"``; ``psm`` page segmentation mode
    (3 = automatic, 11 = sparse text, 6 = one block); ``preprocess``: ``"auto"`` (second pass only
    when the first is weak), ``"always"`` (both passes, better wins) or ``"never"``.
    ``backend``: ``"tesserocr"`` (in-process, one API per thread), ``"pytesseract"`` (spawns the
    ``tesseract`` binary) or ``"auto"`` (tesserocr when importable).
    """

    #: ``auto`` mode also runs the preprocessed pass when the raw pass found nothing, its
    #: confidence is below ``good_confidence`` or its median line is under ``small_line_px`` tall.
    good_confidence = 0.93
    small_line_px = 20

    def __init__(
        self,
        lang: str = "eng",
        *,
        psm: int = 3,
        preprocess: Literal["auto", "always", "never"] = "auto",
        backend: Literal["auto", "tesserocr", "pytesseract"] = "auto",
        tessdata: str | os.PathLike[str] | None = None,
        min_line_confidence: float = 0.3,
    ) -> None:
        self.lang = lang
        self.psm = psm
        self.preprocess_mode = preprocess
        self.min_line_confidence = min_line_confidence
        self.tessdata = find_tessdata(lang, tessdata)
        self.backend = self._pick_backend(backend)
        self._local = threading.local()
        fingerprint = "-".join(
            weights_fingerprint(Path(self.tessdata, f"{code.lstrip('~')}.traineddata"))[:8]
            for code in lang.split("+") if code
        )
        self.info = EngineInfo(
            name="tesseract",
            version=f"{self._tesseract_version()}-{self.backend}-{lang}-psm{psm}-pp{preprocess}-{fingerprint}",
            device="cpu",
            params={"lang": lang, "psm": psm, "preprocess": preprocess, "backend": self.backend,
                    "tessdata": self.tessdata, "min_line_confidence": min_line_confidence},
        )

    @staticmethod
    def _pick_backend(backend: str) -> str:
        if backend in {"auto", "tesserocr"}:
            try:
                import tesserocr  # noqa: F401

                return "tesserocr"
            except ImportError as exc:
                if backend == "tesserocr":
                    raise EngineUnavailable("tesserocr is not installed") from exc
        import shutil

        try:
            import pytesseract  # noqa: F401
        except ImportError as exc:
            raise EngineUnavailable("neither tesserocr nor pytesseract is installed") from exc
        if shutil.which("tesseract") is None:
            raise EngineUnavailable("pytesseract needs the tesseract binary (apt install tesseract-ocr)")
        return "pytesseract"

    def _tesseract_version(self) -> str:
        if self.backend == "tesserocr":
            import tesserocr

            raw = tesserocr.tesseract_version()
        else:
            import pytesseract

            raw = str(pytesseract.get_tesseract_version())
        match = re.search(r"\d+\.\d+(\.\d+)?", raw)
        return match.group(0) if match else "unknown"

    # --- recognition
    def _api(self) -> Any:
        """This thread's tesserocr API (created once per thread; tesserocr objects are not shareable)."""
        api = getattr(self._local, "api", None)
        if api is None:
            import tesserocr

            try:
                api = tesserocr.PyTessBaseAPI(path=self.tessdata, lang=self.lang, psm=self.psm)
            except RuntimeError as exc:
                raise EngineUnavailable(f"tesseract failed to load {self.lang!r}: {exc}") from exc
            self._local.api = api
        return api

    def _lines_tesserocr(self, image: Image.Image) -> list[OcrLine]:
        import tesserocr

        api = self._api()
        level = tesserocr.RIL.TEXTLINE
        lines = []
        try:
            api.SetImage(image)
            api.Recognize()
            iterator = api.GetIterator()
            for item in tesserocr.iterate_level(iterator, level) if iterator is not None else ():
                try:
                    text = (item.GetUTF8Text(level) or "").strip()
                except RuntimeError:  # "No text returned" for empty elements
                    continue
                bbox = item.BoundingBox(level)
                if not text or bbox is None:
                    continue
                x0, y0, x1, y1 = bbox
                lines.append(OcrLine(" ".join(text.split()), item.Confidence(level) / 100.0,
                                     (x0, y0, x1 - x0, y1 - y0)))
        finally:
            api.Clear()
        return lines

    def _lines_pytesseract(self, image: Image.Image) -> list[OcrLine]:
        import pytesseract

        data = pytesseract.image_to_data(
            image, lang=self.lang, config=f"--psm {self.psm} --tessdata-dir {self.tessdata}",
            output_type=pytesseract.Output.DICT,
        )
        groups: dict[tuple[int, int, int], list[int]] = {}
        for i, word in enumerate(data["text"]):
            if str(word).strip() and float(data["conf"][i]) >= 0:
                key = (data["block_num"][i], data["par_num"][i], data["line_num"][i])
                groups.setdefault(key, []).append(i)
        lines = []
        for idx in groups.values():
            x0 = min(data["left"][i] for i in idx)
            y0 = min(data["top"][i] for i in idx)
            x1 = max(data["left"][i] + data["width"][i] for i in idx)
            y1 = max(data["top"][i] + data["height"][i] for i in idx)
            words = [str(data["text"][i]).strip() for i in idx]
            weights = [len(w) for w in words]
            conf = sum(float(data["conf"][i]) * w for i, w in zip(idx, weights, strict=True)) / sum(weights)
            lines.append(OcrLine(" ".join(words), conf / 100.0, (x0, y0, x1 - x0, y1 - y0)))
        return lines

    def _recognize(self, image: Image.Image, scale: float, variant: str) -> OcrResult:
        lines = self._lines_tesserocr(image) if self.backend == "tesserocr" else self._lines_pytesseract(image)
        if scale != 1.0:
            lines = [OcrLine(ln.text, ln.confidence, tuple(round(v / scale) for v in ln.box))  # type: ignore[misc]
                     for ln in lines]
        lines = [ln for ln in lines if ln.confidence >= self.min_line_confidence]
        return OcrResult.from_lines(lines, variant)

    def read(self, image: ImageInput) -> OcrResult:
        """Recognize text in ``image`` (PIL image, RGB/grey array or file path)."""
        pil = as_pil(image)
        if pil.width < 2 or pil.height < 2:
            return OcrResult("", 0.0, [], "raw")
        try:
            raw = self._recognize(pil.convert("L"), 1.0, "raw")
            if self.preprocess_mode == "never":
                return raw
            heights = [ln.box[3] for ln in raw.lines]
            if self.preprocess_mode == "auto" and raw.text and raw.confidence >= self.good_confidence \
                    and float(np.median(heights)) >= self.small_line_px:
                return raw
            scale = _scale_for(pil, heights)
            if max(pil.size) * scale > 8000:  # keep huge images tractable
                scale = max(1.0, 8000 / max(pil.size))
            pre = self._recognize(preprocess(pil, scale), scale, "preprocessed")
        except (RuntimeError, OSError) as exc:
            raise PermanentEngineError(f"tesseract failed: {exc}") from exc
        return _better(raw, pre)


def _better(a: OcrResult, b: OcrResult) -> OcrResult:
    """The result with the higher confidence; an empty result never beats a non-empty one."""
    if not a.text:
        return b
    if not b.text:
        return a
    return b if b.confidence > a.confidence else a


class LayeredOcr:
    """Tesseract first (fast); RapidOCR for frames where Tesseract read nothing confidently
    (captions and memes over busy backgrounds, rotated text).

    Costs RapidOCR's ~0.5–1 s (2 CPU cores) on every frame Tesseract cannot read, text-free
    frames included: worth it for meme-heavy libraries or on GPU workers.
    """

    def __init__(self, lang: str = "eng", *, good_confidence: float = 0.8, device: str | None = None) -> None:
        self.tesseract = TesseractOcr(lang)
        self.good_confidence = good_confidence
        self._rapid: RapidOcr | None = None
        self._rapid_device = device
        self.info = EngineInfo(name="tesseract+rapidocr",
                               version=f"{self.tesseract.info.version}+rapidocr-fallback@{good_confidence}",
                               device="cpu", params={"lang": lang})

    def read(self, image: ImageInput) -> OcrResult:
        first = self.tesseract.read(image)
        if first.text and first.confidence >= self.good_confidence:
            return first
        if self._rapid is None:
            self._rapid = RapidOcr(device=self._rapid_device)
        second = self._rapid.read(image)
        return second if second.text and second.confidence > first.confidence else first


# --------------------------------------------------------------------------- rapidocr


class RapidOcr:
    """PP-OCR (det + cls + rec ONNX models bundled by the ``rapidocr`` package) via onnxruntime.

    Reads scene text, rotated and stylised text that Tesseract misses; ~10× slower on CPU.
    ``params`` are passed to ``rapidocr.RapidOCR(params=...)`` (e.g. custom model paths).
    ``device``: ``auto``/``cpu``/``cuda``; CUDA turns on onnxruntime's CUDA provider for the three
    models when usable, else CPU with one warning. ``info.device`` is the device the sessions use
    (not part of ``version``: the same models and thresholds give the same text).
    """

    def __init__(self, *, min_confidence: float = 0.5, params: dict[str, Any] | None = None,
                 device: str | None = None) -> None:
        try:
            import rapidocr
            from rapidocr import RapidOCR
            from rapidocr._version import __version__ as rapidocr_version
        except ImportError as exc:
            raise EngineUnavailable("rapidocr is not installed") from exc
        self.min_confidence = min_confidence
        # Det limit "max 960" (PaddleOCR's default) instead of rapidocr's "min 736", which blows small or
        # wide images up to ≥736 px on the short side: 3-5× slower, no better here.
        defaults = {"Global.log_level": "error", "Global.text_score": min_confidence,
                    "Det.limit_type": "max", "Det.limit_side_len": 960}
        wanted = resolve_device(device or pick_device(), engine="rapidocr", runtime="onnxruntime")
        merged = {**defaults, **(params or {}), "EngineConfig.onnxruntime.use_cuda": wanted == "cuda"}
        try:
            self._engine = RapidOCR(params=merged)
        except Exception as exc:  # missing/undownloadable models surface as assorted errors
            raise EngineUnavailable(f"rapidocr failed to load its models: {exc}") from exc
        self._lock = threading.Lock()
        models = Path(rapidocr.__file__).parent / "models"
        onnx = sorted(models.glob("*.onnx"))
        fingerprint = "-".join(weights_fingerprint(p)[:6] for p in onnx) or "custom"
        used = self._session_device(wanted)
        config = {k: v for k, v in sorted(merged.items())
                  if k not in {"Global.log_level", "EngineConfig.onnxruntime.use_cuda"}}
        config_hash = hashlib.sha256(repr(config).encode()).hexdigest()[:6]
        self.info = EngineInfo(
            name="rapidocr",
            version=f"{rapidocr_version}-{fingerprint}-{config_hash}",
            device=used,
            params={"models": [p.name for p in onnx], **config},
        )

    def _session_device(self, wanted: str) -> str:
        """The device the detection model's onnxruntime session runs on (``wanted`` if not inspectable).

        On CUDA the detection model is loaded now (rapidocr loads lazily) so a provider that fails to
        start is seen, and warned about, at load time rather than recorded as ``cuda``.
        """
        if wanted == "cuda" and hasattr(self._engine, "_load_det_model"):
            try:
                self._engine._load_det_model()
            except Exception as exc:  # same contract as loading the engine
                raise EngineUnavailable(f"rapidocr failed to load its detection model: {exc}") from exc
        session = getattr(getattr(self._engine, "text_det", None), "session", None)
        session = getattr(session, "session", session)  # rapidocr wraps the InferenceSession
        if session is None or not hasattr(session, "get_providers"):
            return wanted
        return onnx_session_device(session, wanted, engine="rapidocr")

    def read(self, image: ImageInput) -> OcrResult:
        """Recognize text lines in ``image`` (top-to-bottom, left-to-right)."""
        arr = np.asarray(as_pil(image).convert("RGB"))
        try:
            with self._lock:  # one onnxruntime session set per engine; it parallelises internally
                out = self._engine(arr)
        except Exception as exc:
            raise PermanentEngineError(f"rapidocr failed: {exc}") from exc
        boxes = getattr(out, "boxes", None)
        if boxes is None or out.txts is None:
            return OcrResult("", 0.0, [], "rapidocr")
        lines = []
        for poly, text, score in zip(boxes, out.txts, out.scores, strict=False):
            pts = np.asarray(poly, dtype=np.float64)
            x0, y0 = np.floor(pts.min(axis=0)).astype(int)
            x1, y1 = np.ceil(pts.max(axis=0)).astype(int)
            if str(text).strip() and float(score) >= self.min_confidence:
                lines.append(OcrLine(str(text).strip(), float(score),
                                     (int(x0), int(y0), int(x1 - x0), int(y1 - y0))))
        lines.sort(key=lambda ln: (ln.box[1] + ln.box[3] // 2, ln.box[0]))
        return OcrResult.from_lines(lines, "rapidocr")


# --------------------------------------------------------------------------- factory

OCR_ENGINES = ("tesserocr", "pytesseract", "auto", "rapidocr", "layered")


@cached_engine
def _load_ocr(lang: str, engine: str, device: str | None = None) -> TesseractOcr | RapidOcr | LayeredOcr:
    if engine == "rapidocr":
        return RapidOcr(device=device)
    if engine == "layered":
        return LayeredOcr(lang, device=device)
    return TesseractOcr(lang, backend=engine)  # type: ignore[arg-type]


def get_ocr(lang: str = "eng", engine: str | None = None,
            device: str | None = None) -> TesseractOcr | RapidOcr | LayeredOcr:
    """The process-wide OCR engine: ``engine`` (default ``tesserocr``; the ocr stage passes its configured one)
    is ``tesserocr``/``pytesseract``/``auto`` (Tesseract backends, ``lang`` applies) or ``rapidocr``.
    ``device`` applies to RapidOCR (alone or as the layered fallback); Tesseract runs on the CPU.
    """
    engine = (engine or "tesserocr").lower()
    if engine not in OCR_ENGINES:
        raise EngineUnavailable(f"unknown OCR engine {engine!r}; use one of {', '.join(OCR_ENGINES)}")
    return _load_ocr(lang, engine, device if engine in {"rapidocr", "layered"} else None)


# --------------------------------------------------------------------------- over time


def normalize_text(text: str) -> str:
    """Comparison key: NFKC, case-folded, punctuation dropped, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = "".join(ch if ch.isalnum() or ch.isspace() else " " for ch in text)
    return " ".join(text.split())


def merge_over_time(
    results: Iterable[tuple[float, OcrResult]],
    *,
    level: Literal["line", "text"] = "line",
    similarity: float = 0.85,
    max_missing: int = 0,
    min_confidence: float = 0.0,
) -> list[OcrSpan]:
    """Merge OCR of successive keyframes into spans of on-screen text.

    Each line (``level="line"``) or whole text (``level="text"``) is matched against the spans
    open at the previous keyframe by normalised text (:func:`normalize_text`; fuzzy match with
    ``difflib`` ratio ≥ ``similarity``, 1.0 = exact). A span stays open while its text appears in
    consecutive keyframes, tolerating ``max_missing`` keyframes without it. The span's text is its
    most confident reading; its confidence the mean over readings. Sorted by start time.
    """
    frames = sorted(results, key=lambda item: item[0])
    open_spans: list[dict[str, Any]] = []
    done: list[dict[str, Any]] = []
    for frame_no, (t, result) in enumerate(frames):
        if level == "line":
            items = [(ln.text, ln.confidence) for ln in result.lines]
            if not items and result.text.strip():
                items = [(line, result.confidence) for line in result.text.splitlines()]
        else:
            items = [(result.text, result.confidence)]
        items = [(text, conf) for text, conf in items if normalize_text(text) and conf >= min_confidence]
        matched: set[int] = set()
        for text, conf in items:
            key = normalize_text(text)
            best, best_ratio = None, -1.0
            for i, span in enumerate(open_spans):
                if i in matched:
                    continue
                ratio = 1.0 if span["key"] == key else difflib.SequenceMatcher(None, span["key"], key).ratio()
                if ratio >= similarity and ratio > best_ratio:
                    best, best_ratio = i, ratio
            if best is None:
                open_spans.append({"key": key, "text": text, "best": conf, "start": t, "end": t,
                                   "confs": [conf], "last": frame_no})
                matched.add(len(open_spans) - 1)
                continue
            span = open_spans[best]
            matched.add(best)
            span.update(end=t, last=frame_no)
            span["confs"].append(conf)
            if conf > span["best"]:
                span.update(text=text, best=conf, key=key)
        still_open = []
        for span in open_spans:
            (still_open if frame_no - span["last"] <= max_missing else done).append(span)
        open_spans = still_open
    done.extend(open_spans)
    spans = [
        OcrSpan(text=s["text"], start=s["start"], end=s["end"],
                confidence=float(np.mean(s["confs"])), count=len(s["confs"]))
        for s in done
    ]
    return sorted(spans, key=lambda s: (s.start, s.end, s.text))
