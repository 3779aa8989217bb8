"""EfficientNet-Lite0 tags + embeddings on real photos; the open_clip backend on a tiny random checkpoint."""

from __future__ import annotations

import importlib.util
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workers.engines import image_embed
from workers.engines.base import EngineUnavailable, PermanentEngineError


def _package_photo(package: str, relative: str) -> np.ndarray:
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.origin, f"{package} not installed"
    return np.asarray(Image.open(Path(spec.origin).parent / relative).convert("RGB"))


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    from sklearn.datasets import load_sample_images

    china, flower = load_sample_images().images
    return {
        "china": china,
        "flower": flower,
        "bus": _package_photo("ultralytics", "assets/bus.jpg"),
        "zidane": _package_photo("ultralytics", "assets/zidane.jpg"),
        "hopper": _package_photo("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),
    }


@pytest.fixture(scope="module")
def embedder() -> image_embed.ImageEmbedder:
    return image_embed.get_embedder()


@pytest.fixture(scope="module")
def analyses(embedder, photos) -> dict[str, image_embed.ImageAnalysis]:
    return dict(zip(photos, embedder.analyze(list(photos.values())), strict=True))


def _jpeg_copy(image: np.ndarray, scale: float, quality: int) -> Image.Image:
    img = Image.fromarray(image)
    img = img.resize((round(img.width * scale), round(img.height * scale)), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue()))


def test_embeddings_are_unit_float32_1280(analyses):
    for name, a in analyses.items():
        assert a.embedding.shape == (1280,) and a.embedding.dtype == np.float32, name
        assert np.linalg.norm(a.embedding) == pytest.approx(1.0, abs=1e-4), name


def test_resized_jpeg_copy_is_close_unrelated_photos_are_not(embedder, photos, analyses):
    originals = np.stack([a.embedding for a in analyses.values()])
    copies = embedder.embed_images([_jpeg_copy(p, 0.6, 70) for p in photos.values()])
    sims = copies @ originals.T
    own = np.diag(sims)
    assert (own >= 0.8).all(), dict(zip(photos, own.round(3), strict=True))
    unrelated = originals @ originals.T
    np.fill_diagonal(unrelated, 0.0)
    assert unrelated.max() < own.min() - 0.2
    # a harsher copy (half size, JPEG q50) still finds its own original first
    harsh = embedder.embed_images([_jpeg_copy(p, 0.5, 50) for p in photos.values()])
    assert ((harsh @ originals.T).argmax(axis=1) == np.arange(len(photos))).all()


@pytest.mark.parametrize(
    ("photo", "plausible"),
    [
        ("bus", {"minibus", "trolleybus", "school bus", "passenger car", "police van", "streetcar"}),
        ("flower", {"daisy", "bee", "pot", "vase"}),
        ("china", {"palace", "bell cote", "monastery", "church", "pagoda", "stupa", "dome"}),
        ("hopper", {"military uniform", "academic gown", "mortarboard", "suit", "bow tie", "Windsor tie"}),
    ],
)
def test_photos_get_plausible_tags(analyses, photo, plausible):
    tags = analyses[photo].tags
    assert tags, photo
    assert {label for label, _ in tags[:3]} & plausible, tags


def test_tags_are_sorted_bounded_and_thresholded(embedder, analyses):
    for a in analyses.values():
        scores = [s for _, s in a.tags]
        assert scores == sorted(scores, reverse=True)
        assert len(a.tags) <= embedder.top_k
        assert all(embedder.min_score <= s <= 1.0 for s in scores)


def test_top_k_and_min_score_are_parameters(embedder, photos, analyses):
    strict = image_embed.get_embedder(min_score=0.5, top_k=1)
    assert strict is not embedder and strict.info.version != embedder.info.version
    bus, flower = strict.analyze([photos["bus"], photos["flower"]])
    assert bus.tags == analyses["bus"].tags[:1] and bus.tags[0][1] >= 0.5
    assert flower.tags == [] and analyses["flower"].tags  # its best tag is below 0.5
    assert float(bus.embedding @ analyses["bus"].embedding) > 0.9999  # embeddings do not depend on them


def test_batching_does_not_change_results(embedder, photos, analyses):
    singles = [embedder.analyze([p])[0] for p in photos.values()]
    chunked = embedder.analyze(list(photos.values()), batch_size=2)
    for a, b, c in zip(analyses.values(), singles, chunked, strict=True):
        assert float(a.embedding @ b.embedding) > 0.9999
        assert float(a.embedding @ c.embedding) > 0.9999
        assert [t for t, _ in a.tags] == [t for t, _ in b.tags]
    assert embedder.analyze([]) == []
    assert embedder.embed_images([]).shape == (0, 1280)


def test_input_forms(embedder, photos):
    rgb = photos["china"]
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    tiny = np.full((3, 5, 3), 90, np.uint8)  # smaller than the model input
    gray = np.asarray(Image.fromarray(rgb).convert("L"))
    out = embedder.analyze([rgb, Image.fromarray(rgb), rgba, tiny, gray])
    assert float(out[0].embedding @ out[1].embedding) > 0.9999
    assert float(out[0].embedding @ out[2].embedding) > 0.9999
    assert all(np.isfinite(a.embedding).all() for a in out)
    with pytest.raises(PermanentEngineError):
        embedder.analyze(["not an image"])  # type: ignore[list-item]


def test_labels_and_module_entry_point(embedder, photos):
    labels = image_embed.imagenet_labels()
    assert len(labels) == 1000 and labels[0] == "tench"
    assert image_embed.get_embedder() is embedder
    assert image_embed.analyze([photos["bus"]])[0].tags == embedder.analyze([photos["bus"]])[0].tags


def test_configured_weights_path(tmp_path, embedder, photos):
    copy = tmp_path / "lite0-copy.pth"
    shutil.copy(image_embed.resolve_weights(), copy)
    configured = image_embed.get_embedder(copy)
    assert configured is not embedder
    assert configured.info.version == embedder.info.version  # same bytes, same version
    a, b = configured.analyze([photos["flower"]])[0], embedder.analyze([photos["flower"]])[0]
    assert float(a.embedding @ b.embedding) > 0.9999

    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(PermanentEngineError):
        image_embed.ImageEmbedder(junk, device="cpu")
    with pytest.raises(PermanentEngineError):
        image_embed.get_embedder(tmp_path / "missing.pth")


def test_info(embedder):
    assert embedder.info.name == "image_embed"
    assert embedder.info.version.startswith("efficientnet-lite0-")
    assert image_embed.engine_info().version == embedder.info.version


# ---------------------------------------------------------------- open_clip backend


def test_clip_unavailable_until_configured():
    with pytest.raises(EngineUnavailable, match="MEDIAINTEL_CLIP"):
        image_embed.get_clip()
    with pytest.raises(EngineUnavailable):
        image_embed.get_clip("ViT-B-32")
    with pytest.raises(PermanentEngineError):
        image_embed.get_clip("ViT-B-32", "/nonexistent/clip.pt")


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    """A random 2-layer CLIP registered with open_clip and saved as a local checkpoint."""
    import open_clip
    import torch

    root = tmp_path_factory.mktemp("clip")
    cfg = {
        "embed_dim": 32,
        "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
    }
    (root / "mi-test-tiny-clip.json").write_text(json.dumps(cfg))
    open_clip.add_model_config(root)
    torch.manual_seed(1234)
    model = open_clip.create_model("mi-test-tiny-clip").eval()
    torch.save(model.state_dict(), root / "tiny.pt")
    return "mi-test-tiny-clip", root / "tiny.pt", model


def test_clip_configured_shares_one_space(tiny_clip, photos):
    import open_clip
    import torch

    name, weights, reference = tiny_clip
    clip = image_embed.get_clip(name, weights, device="cpu")
    assert clip.dim == 32 and clip.info.name == "clip" and clip.info.version.startswith(name)

    images = clip.embed_images(
        [photos["bus"], Image.fromarray(photos["flower"]), photos["china"]], batch_size=2
    )
    texts = clip.embed_texts(["a bus", "a flower", "a palace"])
    assert images.shape == (3, 32) and texts.shape == (3, 32)
    assert images.dtype == texts.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(images, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(texts, axis=1), 1.0, atol=1e-5)

    # the checkpoint's weights are the ones in use (a fresh random init would differ)
    with torch.inference_mode():
        expected = reference.encode_text(open_clip.get_tokenizer(name)(["a bus"])).numpy()[0]
    np.testing.assert_allclose(texts[0], expected / np.linalg.norm(expected), atol=1e-5)
    assert clip.embed_texts([]).shape == (0, 32)


# ---------------------------------------------------------------- onnxruntime backend (the default)


@pytest.fixture(scope="module")
def onnx_embedder() -> image_embed.OnnxImageEmbedder:
    return image_embed.get_onnx_embedder(device="cpu")


def test_onnx_gives_torch_tags_and_embeddings_when_tagging_real_photos(embedder, onnx_embedder, photos, analyses):
    assert onnx_embedder.info.version == embedder.info.version  # the runtime is not part of the version
    assert onnx_embedder.info.params["runtime"] == "onnxruntime" and onnx_embedder.labels == embedder.labels
    got = onnx_embedder.analyze(list(photos.values()), batch_size=2)
    for name, a, b in zip(photos, got, analyses.values(), strict=True):
        assert float(a.embedding @ b.embedding) >= 0.999, name
        assert a.embedding.dtype == np.float32 and a.embedding.shape == (1280,)
        assert [t for t, _ in a.tags] == [t for t, _ in b.tags], (name, a.tags, b.tags)
        assert np.allclose([s for _, s in a.tags], [s for _, s in b.tags], atol=2e-3), (name, a.tags, b.tags)
    # the full top 5, below the score floor too
    every_torch = image_embed.get_embedder(min_score=0.0).analyze(list(photos.values()))
    every_onnx = image_embed.get_onnx_embedder(min_score=0.0, device="cpu").analyze(list(photos.values()))
    for name, a, b in zip(photos, every_onnx, every_torch, strict=True):
        assert [t for t, _ in a.tags] == [t for t, _ in b.tags], name
    assert onnx_embedder.analyze([]) == [] and onnx_embedder.embed_images([]).shape == (0, 1280)


def test_onnx_export_lives_in_the_cache_with_its_labels(onnx_embedder):
    folder = Path(onnx_embedder.info.params["onnx"])
    assert folder == image_embed.ensure_onnx_export()
    assert folder.name.endswith(f"-r{image_embed.EXPORT_REVISION}") and folder.parent.name == image_embed.EXPORT_NAME
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["labels"][0] == "tench" and len(meta["labels"]) == 1000 and meta["image_size"] == 224


def test_onnx_backend_refuses_weights_that_are_not_a_checkpoint(tmp_path):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(PermanentEngineError, match="image-embed-onnx"):
        image_embed.OnnxImageEmbedder(junk, device="cpu", cache=tmp_path / "cache")


_DEFAULT_ENGINES = """
import json, sys, django
django.setup()
from django.conf import settings
from sklearn.datasets import load_sample_images
from workers.process import PRELOADERS
tags, text = PRELOADERS["tags"](), PRELOADERS["text_embed"]()  # the worker's preload, default configuration
analysis = tags.analyze(list(load_sample_images().images))
vectors = text.embed(["harbour ferry timetable"])
print(json.dumps({"torch": sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "torchvision")),
                  "engines": [type(tags).__name__, type(text).__name__], "tags": [a.tags[0][0] for a in analysis],
                  "dim": int(vectors.shape[1])}))
"""


def test_default_tags_and_text_embedding_import_no_torch_when_a_worker_loads_them():
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[3]
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "mediaintel.settings_test", "MEDIAINTEL_WORKER_ROLE": "all"}
    for var in ("MEDIAINTEL_IMAGE_EMBED_BACKEND", "MEDIAINTEL_TEXT_EMBED_BACKEND"):
        env.pop(var, None)
    out = subprocess.run([sys.executable, "-c", _DEFAULT_ENGINES], cwd=root, env=env, capture_output=True,
                         text=True, timeout=600, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["engines"] == ["OnnxImageEmbedder", "OnnxTextEmbedder"]
    assert got["torch"] == [] and got["dim"] == 384
    assert got["tags"][0] == "palace"


def test_batch_preprocessing_on_several_threads_equals_one_thread(embedder, photos, monkeypatch):
    images = list(photos.values())
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    one = embedder._preprocess_batch(images)
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    threads: set[str] = set()
    original = embedder._preprocess

    def spy(image):
        import threading

        threads.add(threading.current_thread().name)
        return original(image)

    monkeypatch.setattr(embedder, "_preprocess", spy)
    many = embedder._preprocess_batch(images)
    assert many.dtype == np.float32 and np.array_equal(one, many)
    assert len(threads) > 1 and all(name.startswith("engine-cpu") for name in threads)


def test_the_preprocessing_pool_is_made_again_in_a_forked_child(monkeypatch):
    import multiprocessing

    from workers.engines.base import parallel_map

    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert parallel_map(abs, [-1, -2, -3]) == [1, 2, 3]  # the parent's pool exists now
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:  # a child that inherited the parent's (thread-less) pool object
        assert pool.apply_async(parallel_map, (abs, [-4, -5, -6])).get(timeout=20) == [4, 5, 6]
