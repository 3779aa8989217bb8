"""What search answers: snippets with highlighted words, asset summaries, links and the JSON bodies
of a page of text-search or look-alike results.

Invariants: a snippet's HTML is escaped text with only ``<mark>`` added; every link is built by
:mod:`apps.assets.links`; an asset deleted between ranking and rendering is left out of the page.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from apps.assets import links
from apps.assets.models import MediaAsset
from apps.search import query
from apps.search.query import MARK_START, MARK_STOP
from apps.search.rank import Group

SNIPPET_CHARS = 240


def highlight(headline: str) -> tuple[str, str]:
    """(plain text, HTML with ``<mark>``) of a ts_headline result carrying the control-character marks."""
    plain = headline.replace(MARK_START, "").replace(MARK_STOP, "")
    marked = html.escape(headline).replace(MARK_START, "<mark>").replace(MARK_STOP, "</mark>")
    return plain, marked


def shorten(text: str, n: int = SNIPPET_CHARS) -> str:
    """``text`` with its whitespace collapsed, cut at a word boundary to about ``n`` characters (``…`` marks a cut)."""
    text = " ".join(text.split())
    if len(text) <= n:
        return text
    cut = text.rfind(" ", 0, n)
    return text[: cut if cut > n // 2 else n] + " …"


def snippet(text: str | None, headline: str | None) -> tuple[str, str, bool]:
    """(snippet, snippet_html, whether words matched) of one chunk from its text and ts_headline."""
    if MARK_START in (headline or ""):
        plain, marked = highlight(headline or "")
        return plain, marked, True
    short = shorten(text or "")
    return short, html.escape(short), False


def snippets(chunk_ids: Sequence[int], q: str) -> dict[int, tuple[str, str, bool]]:
    """chunk id → (snippet, snippet_html, whether words matched); matched words highlighted."""
    return {cid: snippet(text, headline) for cid, text, headline in query.headlines(chunk_ids, q)}


def asset_summary(a: MediaAsset) -> dict[str, Any]:
    return {"id": str(a.pk), "kind": a.kind, "title": a.title, "filename": a.filename, "mime_type": a.mime_type,
            "duration": a.duration, "status": a.status, "moderation_state": a.moderation_state,
            "uploader": a.uploader.get_username() if a.uploader_id else None,
            "created_at": a.created_at.isoformat().replace("+00:00", "Z")}


def _thumb(asset: MediaAsset, kf: int | None) -> str | None:
    return links.thumbnail_url(asset.pk, asset.kind, kf)


def render_groups(groups: Sequence[Group], q: str) -> list[dict[str, Any]]:
    """The ``results`` of a text search: per asset, its summary, score, links and moments with snippets."""
    assets = query.assets([g.asset_id for g in groups])
    hits = [h for g in groups for h in g.hits]
    snips = snippets([h.id for h in hits], q)
    video = {str(a.pk) for a in assets.values() if a.kind == "video"}
    points = [(h.asset_id, h.start, h.end) for h in hits if str(h.asset_id) in video]
    kfs = iter(query.nearest_keyframes(points))
    out = []
    for g in groups:
        asset = assets.get(str(g.asset_id))
        if asset is None:  # deleted meanwhile
            continue
        moments = []
        for h in g.hits:
            kf = next(kfs) if str(h.asset_id) in video else None
            text, text_html, matched = snips.get(h.id, ("", "", False))
            moments.append({
                "chunk_id": h.id, "source": h.source, "start": h.start, "end": h.end, "char_start": h.char_start,
                "char_end": h.char_end, "language": h.language, "score": h.score, "similarity": h.similarity,
                "text_rank": h.text_rank, "snippet": text, "snippet_html": text_html, "matched_words": matched,
                "keyframe_index": kf, "thumbnail_url": _thumb(asset, kf),
                "url": links.console_url(asset.pk, h.start)})
        out.append({"asset": asset_summary(asset), "score": g.score,
                    "thumbnail_url": moments[0]["thumbnail_url"] if moments else _thumb(asset, None),
                    "url": links.console_url(asset.pk), "moments": moments})
    return out


def render_lookalikes(page: Sequence[Group], threshold: int) -> list[dict[str, Any]]:
    """The ``results`` of a look-alike search: per asset, near-duplicate and similarity summaries and
    its matching keyframes (a video hit without a keyframe shows the keyframe nearest its time)."""
    assets = query.assets([g.asset_id for g in page])
    video = {k for k, a in assets.items() if a.kind == "video"}
    points = [(h.asset_id, h.start, h.end) for g in page for h in g.hits if str(h.asset_id) in video
              and h.keyframe_index is None]
    kfs = iter(query.nearest_keyframes(points))
    results = []
    for g in page:
        asset = assets.get(str(g.asset_id))
        if asset is None:
            continue
        ms = []
        for h in g.hits:
            kf = h.keyframe_index
            if kf is None and str(h.asset_id) in video:
                kf = next(kfs)
            ms.append({"keyframe_index": h.keyframe_index, "time": h.start, "similarity": h.similarity,
                       "pdq_distance": h.pdq_distance,
                       "near_duplicate": h.pdq_distance is not None and h.pdq_distance <= threshold,
                       "score": h.score, "thumbnail_url": _thumb(asset, kf),
                       "url": links.console_url(asset.pk, h.start)})
        dists = [m["pdq_distance"] for m in ms if m["pdq_distance"] is not None]
        sims = [m["similarity"] for m in ms if m["similarity"] is not None]
        results.append({"asset": asset_summary(asset), "score": g.score,
                        "near_duplicate": bool(dists), "pdq_distance": min(dists) if dists else None,
                        "similarity": max(sims) if sims else None,
                        "thumbnail_url": ms[0]["thumbnail_url"] if ms else _thumb(asset, None),
                        "url": links.console_url(asset.pk), "moments": ms})
    return results
