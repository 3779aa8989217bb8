"""Tests of workers.engines.ocr on rendered text (Tesseract via tesserocr/pytesseract, RapidOCR)."""

from __future__ import annotations

import shutil
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests import media
from workers.engines import decode, ocr
from workers.engines.base import EngineUnavailable

PANGRAM = "The quick brown fox jumps over\nthe lazy dog 0123456789"


def cer(reference: str, hypothesis: str) -> float:
    """Character error rate: Levenshtein distance over the reference length (whitespace collapsed)."""
    ref = " ".join(reference.split())
    hyp = " ".join(hypothesis.split())
    prev = list(range(len(hyp) + 1))
    for i, a in enumerate(ref, 1):
        cur = [i]
        for j, b in enumerate(hyp, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a != b)))
        prev = cur
    return prev[-1] / max(1, len(ref))


def test_cer_helper() -> None:
    assert cer("abcd", "abcd") == 0.0
    assert cer("abcd", "abed") == 0.25
    assert cer("ab\ncd", "ab cd") == 0.0


@pytest.fixture(scope="module")
def tess() -> ocr.TesseractOcr:
    return ocr.TesseractOcr("eng")


# --------------------------------------------------------------------------- accuracy


@pytest.mark.parametrize("font_size", [18, 32, 48])
def test_clean_text_cer(tess: ocr.TesseractOcr, font_size: int) -> None:
    result = tess.read(media.make_text_image(PANGRAM, font_size=font_size))
    assert cer(PANGRAM, result.text) <= 0.02, result.text
    assert result.confidence > 0.85
    assert len(result.lines) == 2


def test_small_low_contrast_text_needs_preprocessing() -> None:
    # 8 px grey-on-grey text: raw Tesseract garbles it, the upscaled/binarised pass reads it.
    image = media.make_text_image(PANGRAM, font_size=8, fg=(110, 110, 110), bg=(150, 150, 150), padding=6)
    raw = ocr.TesseractOcr(preprocess="never").read(image)
    assert cer(PANGRAM, raw.text) > 0.02, "case became easy: the test no longer shows preprocessing helps"
    auto = ocr.TesseractOcr(preprocess="auto").read(image)
    assert auto.variant == "preprocessed"
    assert cer(PANGRAM, auto.text) <= 0.02, auto.text
    for line in auto.lines:  # boxes mapped back to the small input image
        x, y, w, h = line.box
        assert x >= 0 and y >= 0 and x + w <= image.width + 2 and y + h <= image.height + 2


def test_light_text_on_dark_ground(tess: ocr.TesseractOcr) -> None:
    text = "White on black 42"
    image = media.make_text_image(text, font_size=14, fg=(230, 230, 230), bg=(20, 20, 40))
    assert cer(text, tess.read(image).text) <= 0.02


def test_lines_and_boxes(tess: ocr.TesseractOcr) -> None:
    image = Image.new("RGB", (800, 400), "white")
    media.draw_text(image, "TOP LINE", (40, 40), font_size=36, fill="black", box=None)
    media.draw_text(image, "bottom words", (300, 300), font_size=36, fill="black", box=None)
    result = tess.read(image)
    assert [ln.text for ln in result.lines] == ["TOP LINE", "bottom words"]
    (x0, y0, _, h0), (x1, y1, _, _) = (ln.box for ln in result.lines)
    assert abs(x0 - 40) < 10 and abs(y0 - 40) < 12 and 20 < h0 < 50
    assert abs(x1 - 300) < 10 and abs(y1 - 300) < 12
    assert result.text == "TOP LINE\nbottom words"
    assert all(0.0 <= ln.confidence <= 1.0 for ln in result.lines)


def test_accepts_arrays_paths_and_blank_images(tess: ocr.TesseractOcr, tmp_path: Path) -> None:
    image = media.make_text_image("Array input", font_size=30)
    assert tess.read(np.asarray(image)).text == "Array input"
    assert tess.read(np.asarray(image.convert("L"))).text == "Array input"
    path = media.make_image(tmp_path / "rot.jpg", "Sideways", size=(400, 200), exif_orientation=6, quality=95)
    assert tess.read(path).text == "Sideways"  # EXIF orientation applied before OCR
    blank = tess.read(Image.new("RGB", (640, 360), (30, 90, 200)))
    assert blank.text == "" and blank.lines == [] and blank.confidence == 0.0
    assert tess.read(Image.new("RGB", (1, 1))).text == ""


def test_video_frame_subtitle(tess: ocr.TesseractOcr) -> None:
    frame = Image.fromarray(media.pattern_array("gradient", (1280, 720)))
    media.draw_text(frame, "Breaking news tonight", font_size=32)
    assert cer("Breaking news tonight", tess.read(frame).text) <= 0.02


# --------------------------------------------------------------------------- languages, backends


def test_multiple_languages() -> None:
    try:
        engine = ocr.TesseractOcr("eng+deu")
    except EngineUnavailable:
        pytest.skip("tesseract-ocr-deu not installed")
    text = "Größe über Straße"
    result = engine.read(media.make_text_image(text, font_size=32))
    assert cer(text, result.text) <= 0.06, result.text
    assert "eng+deu" in engine.info.version


def test_missing_language_is_unavailable() -> None:
    with pytest.raises(EngineUnavailable, match="xxx"):
        ocr.TesseractOcr("eng+xxx")


def test_engine_info(tess: ocr.TesseractOcr) -> None:
    assert tess.info.name == "tesseract"
    assert tess.backend == "tesserocr"
    assert "tesserocr" in tess.info.version and "eng" in tess.info.version
    assert ocr.TesseractOcr(psm=11).info.version != tess.info.version


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract binary not installed")
def test_pytesseract_backend_and_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    image = media.make_text_image(PANGRAM, font_size=32)
    explicit = ocr.TesseractOcr(backend="pytesseract")
    assert cer(PANGRAM, explicit.read(image).text) <= 0.02
    assert len(explicit.read(image).lines) == 2
    monkeypatch.setitem(sys.modules, "tesserocr", None)  # tesserocr not importable
    fallback = ocr.TesseractOcr(backend="auto")
    assert fallback.backend == "pytesseract" and "pytesseract" in fallback.info.version
    with pytest.raises(EngineUnavailable):
        ocr.TesseractOcr(backend="tesserocr")


def test_get_ocr_factory() -> None:
    first = ocr.get_ocr("eng")
    assert first is ocr.get_ocr("eng")  # one engine per process and configuration
    assert isinstance(first, ocr.TesseractOcr) and first.backend == "tesserocr"
    if shutil.which("tesseract"):
        assert ocr.get_ocr("eng", engine="pytesseract").backend == "pytesseract"  # type: ignore[union-attr]
    with pytest.raises(EngineUnavailable):
        ocr.get_ocr("eng", engine="nope")


def test_one_api_per_thread(tess: ocr.TesseractOcr) -> None:
    texts = [f"Thread number {i}" for i in range(4)]
    images = [media.make_text_image(t, font_size=30) for t in texts]
    results: dict[int, str] = {}
    apis: dict[int, int] = {}

    def work(i: int) -> None:
        for _ in range(3):
            results[i] = tess.read(images[i]).text
        apis[i] = id(tess._api())

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [results[i] for i in range(4)] == texts
    assert len(set(apis.values())) == 4


def test_otsu_and_preprocess() -> None:
    arr = np.concatenate([np.full(100, 40), np.full(300, 200)]).astype(np.uint8)
    assert 40 <= ocr.otsu_threshold(arr) < 200
    dark = Image.new("L", (20, 10), 10)
    dark.paste(250, (5, 3, 8, 6))
    out = ocr.preprocess(dark, scale=2.0)
    assert out.size == (40, 20)
    assert np.asarray(out).mean() > 127  # inverted to dark text on light ground


# --------------------------------------------------------------------------- merge over time


def _res(*lines: str, conf: float = 0.9) -> ocr.OcrResult:
    return ocr.OcrResult.from_lines([ocr.OcrLine(t, conf, (0, i * 20, 100, 18)) for i, t in enumerate(lines)])


def test_merge_over_time_merges_consecutive_identical_text() -> None:
    frames = [
        (0.0, _res("Hello world")),
        (1.0, _res("hello  world!")),  # same after normalisation
        (2.0, _res("Hello world", "Second caption")),
        (3.0, _res("Second caption")),
        (4.0, _res()),
        (5.0, _res("Hello world")),  # reappears after a gap: new span
    ]
    spans = ocr.merge_over_time(frames)
    got = [(s.text, s.start, s.end, s.count) for s in spans]
    assert got == [
        ("Hello world", 0.0, 2.0, 3),
        ("Second caption", 2.0, 3.0, 2),
        ("Hello world", 5.0, 5.0, 1),
    ]
    assert all(s.confidence == pytest.approx(0.9) for s in spans)


def test_merge_over_time_fuzzy_gap_and_levels() -> None:
    frames = [(2.0, _res("Breaking news tonight", conf=0.7)),
              (0.0, _res("Breaking news tonight", conf=0.9)),  # unsorted input
              (1.0, _res("Breaking newz tonight", conf=0.5)),
              (3.0, _res()),
              (4.0, _res("Breaking news tonight", conf=0.9))]
    fuzzy = ocr.merge_over_time(frames)
    assert [(s.text, s.start, s.end, s.count) for s in fuzzy] == [("Breaking news tonight", 0.0, 2.0, 3),
                                                                  ("Breaking news tonight", 4.0, 4.0, 1)]
    assert fuzzy[0].confidence == pytest.approx((0.9 + 0.5 + 0.7) / 3)
    exact = ocr.merge_over_time(frames, similarity=1.0)
    assert [(s.start, s.end) for s in exact] == [(0.0, 0.0), (1.0, 1.0), (2.0, 2.0), (4.0, 4.0)]
    tolerant = ocr.merge_over_time(frames, max_missing=1)
    assert [(s.start, s.end, s.count) for s in tolerant] == [(0.0, 4.0, 4)]
    assert ocr.merge_over_time(frames, max_missing=1, similarity=1.0)[0].end == 4.0
    whole = ocr.merge_over_time([(0.0, _res("a", "b")), (1.0, _res("a", "b"))], level="text")
    assert [(s.text, s.start, s.end) for s in whole] == [("a\nb", 0.0, 1.0)]
    assert ocr.merge_over_time([(0.0, _res("low", conf=0.2))], min_confidence=0.5) == []


def test_video_keyframes_ocr_merge(tmp_path: Path, tess: ocr.TesseractOcr) -> None:
    """End to end: burnt-in captions → sampled frames → OCR → spans with the right times."""
    video = media.make_video(
        tmp_path / "captions.mp4", [("gradient", 3.0), ("bars", 3.0)], size=(960, 540),
        text_overlays=[("Welcome to the show", 0.0, 2.5), ("Goodbye for now", 3.5, 6.0)])
    frames = decode.sample_frames(video, 0.5, size=960)
    spans = ocr.merge_over_time([(k.time, tess.read(k.image)) for k in frames], max_missing=1)
    by_text = {s.text: s for s in spans if s.count >= 2}
    assert set(by_text) == {"Welcome to the show", "Goodbye for now"}
    # samples every 0.5 s; at 25 fps the frame on screen at t=2.5 is frame 62 (2.48 s), at 3.5 frame 87
    assert (by_text["Welcome to the show"].start, by_text["Welcome to the show"].end) == pytest.approx((0.0, 2.48))
    assert (by_text["Goodbye for now"].start, by_text["Goodbye for now"].end) == pytest.approx((4.0, 5.48))


# --------------------------------------------------------------------------- rapidocr


@pytest.fixture(scope="module")
def rapid() -> ocr.RapidOcr:
    try:
        return ocr.RapidOcr()
    except EngineUnavailable as exc:
        pytest.skip(str(exc))


@pytest.mark.slow
def test_rapidocr_reads_scene_text_tesseract_misses(rapid: ocr.RapidOcr, tess: ocr.TesseractOcr) -> None:
    frame = Image.fromarray(media.pattern_array("noise:3", (960, 540)))
    media.draw_text(frame, "Subtitle text here", font_size=28)
    result = rapid.read(frame)
    assert cer("Subtitle text here", result.text) <= 0.02
    assert result.variant == "rapidocr" and len(result.lines) == 1
    x, y, w, _ = result.lines[0].box
    assert 300 < x < 480 and 400 < y < 540 and w > 150
    rotated = media.make_text_image(PANGRAM, font_size=32).rotate(8, expand=True, fillcolor="white")
    assert cer(PANGRAM, rapid.read(rotated).text) <= 0.02
    assert rapid.info.name == "rapidocr" and rapid.info.version.startswith("3.")
