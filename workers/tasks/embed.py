"""Queue ``embed``: image tags + embeddings, perceptual hashes, text embeddings."""

from __future__ import annotations

from typing import Any

from apps.insights import models as im
from workers.base import StageContext
from workers.tasks import stage_task
from workers.tasks.text import searchable_texts
from workers.tasks.visual import frames_for


@stage_task("tags")
def tags(ctx: StageContext) -> dict[str, Any]:
    """ImageNet tags and a 1280-d embedding per frame (EfficientNet-Lite0), in batches."""
    from workers.engines.image_embed import get_embedder

    frames = frames_for(ctx)
    engine = get_embedder()
    analyses = engine.analyze([f.image for f in frames])
    tag_rows, emb_rows = [], []
    for f, a in zip(frames, analyses, strict=True):
        tag_rows.extend({"label": label, "score": float(score), "keyframe_index": f.index, "start": f.time,
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
    hashes = compute_batch([f.image for f in frames])
    rows = [{"algorithm": "pdq", "hash": h.bits, "quality": h.quality, "keyframe_index": f.index,
             "start": f.time, "end": f.time} for f, h in zip(frames, hashes, strict=True)]
    ctx.save(im.PerceptualHash, rows)
    return {"hashes": len(rows)}


@stage_task("text_embed")
def text_embed(ctx: StageContext) -> dict[str, Any]:
    """Searchable chunks (transcript windows, OCR spans, text chunks) with 384-d embeddings, batched."""
    from django.contrib.postgres.search import SearchVector
    from django.db.models import Value

    from workers.engines.text_embed import get_text_embedder

    chunks = searchable_texts(ctx)
    engine = get_text_embedder()
    vectors = engine.embed([c["text"] for c in chunks]) if chunks else []
    for c, v in zip(chunks, vectors, strict=True):
        c["embedding"] = v.tolist()
    ctx.save(im.TextChunk, chunks)
    im.TextChunk.objects.filter(asset_id=ctx.asset.pk, stage="text_embed").update(
        tsv=SearchVector("text", config=Value("simple")))
    return {"chunks": len(chunks), "engine": engine.info.version}
