"""The ONNX text embedder: the bundled MiniLM on onnxruntime + tokenizers, the default backend of the
``text_embed`` stage (indexing) and of the search worker's queries.

Its vectors must match sentence-transformers' (torch stays selectable, and chunks indexed with either are
searched together) and its paths must never import torch (the point of it: ~550 MiB less per process).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from workers.engines import text_embed, text_embed_onnx

ROOT = Path(__file__).resolve().parents[3]

SENTENCES = [
    "A dog runs along the beach at sunset.",
    "Ein Hund läuft bei Sonnenuntergang am Strand entlang.",
    "Le chien court sur la plage.",
    "私は猫が好きです",
    "knife attack reported near the subway station",
    "How do I reset my password?",
    "ok",
    "",
    "!!!",
    "The quarterly report shows revenue grew 12% while costs fell.",
    "a very long transcript window " + "that keeps talking about ferries and harbours " * 40,  # > 256 tokens
    "Spaces   and\ttabs\nand newlines",
]

CORPUS = [
    "The ferry to the island leaves the harbour every hour.",
    "Our recipe needs two cups of flour and one egg.",
    "The striker scored twice in the second half.",
    "Reset your password from the account settings page.",
    "Heavy rain is expected across the north tonight.",
    "The museum opens a new exhibition of impressionist paintings.",
    "Police closed the road after a knife attack.",
    "Bake the bread at 220 degrees for thirty minutes.",
    "The central bank raised interest rates again.",
    "A cat sleeps on the warm windowsill.",
    "Train services are cancelled because of the strike.",
    "The band announced a world tour for next summer.",
]
QUERIES = ["boat timetable", "cooking with flour", "football goal", "forgot my login", "weather forecast",
           "art gallery", "violent crime", "interest rates", "pets", "rail disruption", "concert dates"]


@pytest.fixture(scope="module")
def torch_embedder() -> text_embed.TextEmbedder:
    return text_embed.get_text_embedder(device="cpu")


@pytest.fixture(scope="module")
def onnx_embedder() -> text_embed_onnx.OnnxTextEmbedder:
    return text_embed_onnx.get_onnx_text_embedder()


def test_onnx_and_torch_vectors_agree_when_sentences_vary(torch_embedder, onnx_embedder):
    a, b = onnx_embedder.embed(SENTENCES, batch_size=5), torch_embedder.embed(SENTENCES)
    assert a.shape == b.shape == (len(SENTENCES), 384) and a.dtype == np.float32
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    cosines = (a * b).sum(axis=1)
    assert cosines.min() >= 0.999, dict(zip(SENTENCES, cosines.round(6), strict=True))


def test_search_ranking_is_unchanged_when_queries_are_embedded_with_onnx(torch_embedder, onnx_embedder):
    index = torch_embedder.embed(CORPUS)  # chunks are indexed with torch
    by_torch = np.argsort(-(torch_embedder.embed(QUERIES) @ index.T), axis=1)
    by_onnx = np.argsort(-(onnx_embedder.embed(QUERIES) @ index.T), axis=1)
    assert (by_torch[:, :5] == by_onnx[:, :5]).all()


def test_batches_give_the_vectors_of_single_sentences_when_padding_differs(onnx_embedder):
    batched = onnx_embedder.embed(SENTENCES, batch_size=len(SENTENCES))
    single = np.vstack([onnx_embedder.embed([s]) for s in SENTENCES])
    assert np.allclose(batched, single, atol=1e-5)
    assert onnx_embedder.embed([]).shape == (0, 384)
    with pytest.raises(TypeError):
        onnx_embedder.embed("not a list")  # type: ignore[arg-type]


def test_export_is_one_versioned_directory_per_weights_when_the_engine_loads(onnx_embedder):
    path = Path(onnx_embedder.info.params["onnx"])
    assert path.is_file() and path == text_embed_onnx.export_path() and path.name == "model.onnx"
    assert path.parent.name.endswith(f"-r{text_embed_onnx.EXPORT_REVISION}")
    fingerprint = onnx_embedder.info.version.split("@", 1)[1].split(";", 1)[0]
    assert fingerprint in path.parent.name and onnx_embedder.info.params["path"].endswith("model")


def test_indexing_and_chunking_give_torch_vectors_when_onnx_is_the_stage_backend(torch_embedder):
    """The ``text_embed`` stage's default engine, over the windows and chunks the stage embeds."""
    from mediacommon.stageconfig import StageConfigs
    from workers.stage_engines import text_embedder

    stages = StageConfigs()
    engine = text_embedder(stages)
    assert isinstance(engine, text_embed_onnx.OnnxTextEmbedder) and stages.text_embed.backend == "onnx"
    segments = [{"start": float(i), "end": float(i + 1), "text": s} for i, s in enumerate(SENTENCES)]
    texts = [w.text for w in text_embed.transcript_windows(segments)]
    texts += [c.text for c in text_embed.chunk_text(" ".join(CORPUS * 20))]
    assert len(texts) > 5
    a = engine.embed(texts, batch_size=stages.text_embed.batch_size)
    b = torch_embedder.embed(texts)
    assert (a * b).sum(axis=1).min() >= 0.999


_QUERY_PATH = """
import importlib, json, sys, django
django.setup()
from django.conf import settings
import mediaintel.celery
for module in settings.CELERY_IMPORTS:  # every task module, as the worker imports them
    importlib.import_module(module)
from workers.process import PRELOADERS
engine = PRELOADERS["text_embed"]()  # the search worker's preload (MEDIAINTEL_WORKER_ROLE=search)
from workers.tasks.search import _redis, embed_query
embed_query(["harbour ferry timetable"], reply_to="test:onnx-query")  # the task body, as the worker runs it
reply = json.loads(_redis().lpop("test:onnx-query"))
print(json.dumps({"torch": "torch" in sys.modules, "engine": type(engine).__name__, "ok": reply["ok"],
                  "vector": reply["vectors"][0], "version": reply["engine_version"]}))
"""


def test_search_worker_query_path_imports_no_torch_when_embedding_a_query(torch_embedder):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "mediaintel.settings_test", "MEDIAINTEL_WORKER_ROLE": "search"}
    out = subprocess.run([sys.executable, "-c", _QUERY_PATH], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=600, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["ok"] and got["engine"] == "OnnxTextEmbedder"
    assert got["torch"] is False
    reference = torch_embedder.embed(["harbour ferry timetable"])[0]
    assert float(np.dot(reference, np.asarray(got["vector"], dtype=np.float32))) >= 0.999


def test_missing_export_is_built_by_a_separate_process_when_the_engine_loads(tmp_path):
    probe = ("import json, sys\n"
             "from workers.engines.text_embed_onnx import OnnxTextEmbedder, export_path\n"
             f"e = OnnxTextEmbedder(cache={str(tmp_path)!r})\n"
             "print(json.dumps({'torch': 'torch' in sys.modules, 'onnx': e.info.params['onnx'],\n"
             f"                  'expected': str(export_path(cache={str(tmp_path)!r})), 'dim': e.dim}}))\n")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=600,
                         check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["torch"] is False and got["dim"] == 384
    assert got["onnx"] == got["expected"] and Path(got["onnx"]).is_file()
    made = [p.name for p in (tmp_path / "text-embed-onnx").iterdir() if not p.name.endswith(".lock")]
    assert made == [Path(got["onnx"]).parent.name]  # no temporary directory left
