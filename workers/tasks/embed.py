"""Queue ``embed``: image tags + embeddings, perceptual hashes, text embeddings."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from apps.insights import models as im
from mediacommon.vocabulary import canonical
from workers.base import StageContext
from workers.tasks import stage_task
from workers.tasks.text import searchable_texts
from workers.tasks.visual import frames_for
from workers.telemetry import engine_call


@stage_task("tags")
def tags(ctx: StageContext) -> dict[str, Any]:
    """ImageNet tags and a 1280-d embedding per frame (EfficientNet-Lite0), in batches."""
    from workers.stage_engines import image_embedder

    frames = frames_for(ctx)
    engine = image_embedder()
    with engine_call("image_embed", len(frames)):
        analyses = engine.analyze([f.image for f in frames])
    tag_rows, emb_rows = [], []
    for f, a in zip(frames, analyses, strict=True):
        tag_rows.extend({"label": label, "canonical": canonical(label, "imagenet"), "score": float(score),
                         "keyframe_index": f.index, "start": f.time,
                         "end": f.time} for label, score in a.tags)
        emb_rows.append({"model": engine.info.name, "keyframe_index": f.index, "start": f.time, "end": f.time,
                         "embedding": a.embedding.tolist()})
    ctx.save(im.Tag, tag_rows)
    ctx.save(im.ImageEmbedding, emb_rows)
    return {"frames": len(frames), "tags": len(tag_rows), "engine": engine.info.version}


@stage_task("hash")
def phash(ctx: StageContext) -> dict[str, Any]:
    """PDQ hash (with quality) per image/keyframe."""
    from workers.engines.phash import compute_batch

    frames = frames_for(ctx)
    with engine_call("phash", len(frames)):
        hashes = compute_batch([f.image for f in frames])
    rows = [{"algorithm": "pdq", "hash": h.bits, "quality": h.quality, "keyframe_index": f.index,
             "start": f.time, "end": f.time} for f, h in zip(frames, hashes, strict=True)]
    ctx.save(im.PerceptualHash, rows)
    return {"hashes": len(rows)}


#: A source's detected language is kept only above this fastText score (short OCR snippets guess badly).
LANGUAGE_MIN_SCORE = 0.5


def chunk_languages(chunks: list[dict[str, Any]]) -> dict[str, str]:
    """Language per source for chunks that have none (OCR, text): fastText over the source's joined text."""
    from workers.engines.base import EngineUnavailable
    from workers.engines.language import UNDETERMINED, detect

    by_source: dict[str, list[str]] = {}
    for c in chunks:
        if not c.get("language"):
            by_source.setdefault(c["source"], []).append(c["text"])
    out = {}
    for source, texts in by_source.items():
        try:
            with engine_call("language"):
                lang, score = detect(" ".join(texts)[:20000])
        except EngineUnavailable:
            return out
        if lang != UNDETERMINED and score >= LANGUAGE_MIN_SCORE:
            out[source] = lang
    return out


@stage_task("text_embed")
def text_embed(ctx: StageContext) -> dict[str, Any]:
    """Searchable chunks (transcript windows, OCR spans, text chunks, tags) with 384-d embeddings, batched;
    full-text vectors stemmed per the chunk's language (``mediaintel_ts_config``, else ``simple``)."""
    from apps.search.fulltext import refresh_tsv
    from workers.stage_engines import text_embedder

    chunks = searchable_texts(ctx)
    engine = text_embedder()
    batch = settings.MEDIAINTEL_STAGES.text_embed.batch_size
    with engine_call("text_embed", len(chunks)):
        vectors = engine.embed([c["text"] for c in chunks], batch_size=batch) if chunks else []
    detected = chunk_languages(chunks)
    for c, v in zip(chunks, vectors, strict=True):
        c["embedding"] = v.tolist()
        c["language"] = c.get("language") or detected.get(c["source"], "")
    ctx.save(im.TextChunk, chunks)
    ctx.then(lambda: refresh_tsv(ctx.asset.pk, "text_embed"))
    return {"chunks": len(chunks), "engine": engine.info.version, "languages": detected}
