"""Moderator console: the review queue, the review item page (claim, evidence, one-key decisions),
bulk decisions. Server-rendered; htmx and ``moderation/console.js`` (plain JS) add keyboard use,
seeking, claim renewal and release on leaving. Every write is an audited action of ``apps.moderation.actions``.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.files.storage import default_storage
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import Count, ExpressionWrapper, F, FloatField, Func, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from apps.assets.models import Kind, MediaAsset
from apps.audit.models import AuditEvent
from apps.core.roles import MODERATOR, has_role
from apps.insights import models as im
from apps.moderation import actions
from apps.moderation.models import (
    Category,
    Decision,
    HashBankEntry,
    Outcome,
    ReviewItem,
    ReviewState,
    Signal,
)
from apps.moderation.services import PENDING, ModerationError
from apps.moderation.taxonomy import NUDITY_LABELS, TEXT_CATEGORIES, WEAPON_LABELS

log = logging.getLogger(__name__)

DAY = 86400.0  # one priority point per day an item waits
PAGE_SIZE = 50
BULK_LIMIT = 200
MAX_FRAMES = 240
MAX_TEXT = 300_000
MAX_HISTORY = 200

GROUP_COLORS = {
    "sexual": "#c2185b", "violence": "#d84315", "hate": "#6a1b9a", "harassment": "#ef6c00",
    "profanity": "#8d6e63", "self_harm": "#283593", "spam": "#00897b", "known_bad": "#212121",
    "people": "#546e7a",
}
FACE_MARGIN = 0.12  # a blurred face box grows by this share of its size on each side (hair, chin)
NEUTRAL = "#90a4ae"
STATE_FILTERS: dict[str, tuple[str, ...] | None] = {
    "pending": tuple(PENDING), "open": (ReviewState.OPEN,), "claimed": (ReviewState.CLAIMED,),
    "escalated": (ReviewState.ESCALATED,), "decided": (ReviewState.DECIDED,), "all": None,
}
OUTCOME_DONE = {Outcome.APPROVE: "Approved", Outcome.REJECT: "Rejected", Outcome.ESCALATE: "Escalated"}


def color_for(code: str) -> str:
    return GROUP_COLORS.get(code.split("/", 1)[0], "#5c6bc0")


def moderator_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Logged in (else the login page) and a moderator or admin (else 403)."""

    @wraps(view)
    @login_required
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not has_role(request.user, MODERATOR):
            raise PermissionDenied("Review pages need the moderator role.")
        return view(request, *args, **kwargs)

    return wrapped


# ------------------------------------------------------------------ queue ordering and filters
class _EpochDays(Func):
    """Days since the Unix epoch of a timestamp (double precision)."""

    template = f"(EXTRACT(EPOCH FROM %(expressions)s)::double precision / {DAY})"
    output_field = FloatField()


def ranked(qs: QuerySet[ReviewItem]) -> QuerySet[ReviewItem]:
    """Annotate ``rank`` = severity − created_at in days.

    Priority is severity + age in days; for any two items the difference of their priorities
    is the difference of their ranks, so ordering by rank is ordering by priority at any moment,
    and a rank is a stable cursor for next/previous.
    """
    return qs.annotate(rank=ExpressionWrapper(F("severity") - _EpochDays(F("created_at")), output_field=FloatField()))


def priority(item: ReviewItem, now: Any = None) -> float:
    now = now or timezone.now()
    return item.severity + (now - item.created_at).total_seconds() / DAY


@dataclass
class QueueFilter:
    state: str = "pending"
    category: str = ""
    kind: str = ""

    @classmethod
    def from_query(cls, data: Any) -> QueueFilter:
        state = data.get("state") or "pending"
        kind = data.get("kind") or ""
        return cls(state=state if state in STATE_FILTERS else "pending", category=(data.get("category") or "")[:64],
                   kind=kind if kind in Kind.values else "")

    def apply(self, qs: QuerySet[ReviewItem], *, skip: str = "") -> QuerySet[ReviewItem]:
        states = STATE_FILTERS[self.state]
        if skip != "state" and states is not None:
            qs = qs.filter(state__in=states)
        if skip != "category" and self.category:
            qs = qs.filter(categories__contains=[self.category])
        if skip != "kind" and self.kind:
            qs = qs.filter(asset__kind=self.kind)
        return qs

    @property
    def query(self) -> str:
        """The filter as a query string ('' for the default), to carry from page to page."""
        pairs = [(k, v) for k, v in (("state", self.state if self.state != "pending" else ""),
                                     ("category", self.category), ("kind", self.kind)) if v]
        return urlencode(pairs)


def _category_counts(qs: QuerySet[ReviewItem]) -> dict[str, int]:
    sql, params = qs.values("categories").query.sql_with_params()
    with connection.cursor() as cur:
        cur.execute(f"SELECT c, count(*) FROM ({sql}) q, jsonb_array_elements_text(q.categories) c "  # noqa: S608
                    "GROUP BY c", params)
        return dict(cur.fetchall())


def _held_by_other(user: Any, now: Any) -> Q:
    return Q(state=ReviewState.CLAIMED, claim_expires_at__gt=now) & ~Q(claimed_by=user)


def _item_url(pk: Any, flt: QueueFilter) -> str:
    url = reverse("review-item", args=[pk])
    return f"{url}?{flt.query}" if flt.query else url


def _queue_url(flt: QueueFilter) -> str:
    url = reverse("review-queue")
    return f"{url}?{flt.query}" if flt.query else url


def neighbour(item: ReviewItem, flt: QueueFilter, step: int, *, workable_for: Any = None) -> Any:
    """The id of the next (step=1) or previous (step=-1) item of the filtered queue, or None.

    ``workable_for``: skip items another moderator holds (used to move on after a decision).
    """
    rank = ranked(ReviewItem.objects.filter(pk=item.pk)).values_list("rank", flat=True).first()
    if rank is None:
        return None
    qs = ranked(flt.apply(ReviewItem.objects.all())).exclude(pk=item.pk)
    if step > 0:
        qs = qs.filter(Q(rank__lt=rank) | Q(rank=rank, pk__gt=item.pk)).order_by("-rank", "pk")
    else:
        qs = qs.filter(Q(rank__gt=rank) | Q(rank=rank, pk__lt=item.pk)).order_by("rank", "-pk")
    if workable_for is not None:
        qs = qs.exclude(_held_by_other(workable_for, timezone.now()))
    return qs.values_list("pk", flat=True).first()


def _position(item: ReviewItem, flt: QueueFilter) -> tuple[int, int] | None:
    """(1-based place, total) of the item in the filtered queue, or None when it is not in it."""
    qs = ranked(flt.apply(ReviewItem.objects.all()))
    rank = qs.filter(pk=item.pk).values_list("rank", flat=True).first()
    if rank is None:
        return None
    before = qs.filter(Q(rank__gt=rank) | Q(rank=rank, pk__lt=item.pk)).count()
    return before + 1, qs.count()


# ------------------------------------------------------------------ queue page
@require_GET
@moderator_required
def queue(request: HttpRequest) -> HttpResponse:
    flt = QueueFilter.from_query(request.GET)
    base = ReviewItem.objects.all()
    by_state = dict(flt.apply(base, skip="state").values_list("state").annotate(n=Count("id")).order_by())
    state_counts = [(s, sum(by_state.get(x, 0) for x in states) if states else sum(by_state.values()))
                    for s, states in STATE_FILTERS.items()]
    kind_counts = dict(flt.apply(base, skip="kind").values_list("asset__kind").annotate(n=Count("id")).order_by())
    cat_counts = _category_counts(flt.apply(base, skip="category"))
    categories = [(c, cat_counts.get(c.code, 0)) for c in Category.objects.all()]

    qs = ranked(flt.apply(base)).select_related("asset", "claimed_by").order_by("-rank", "pk")
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    now = timezone.now()
    rows = []
    for item in page.object_list:
        held = item.state == ReviewState.CLAIMED and item.claim_expires_at and item.claim_expires_at > now
        rows.append({
            "item": item, "priority": priority(item, now),
            "held_by_other": bool(held and item.claimed_by_id != request.user.pk),
            "mine": bool(held and item.claimed_by_id == request.user.pk),
            "selectable": item.state in PENDING and not (held and item.claimed_by_id != request.user.pk),
            "categories": [(c, color_for(c)) for c in item.categories],
            "url": _item_url(item.pk, flt),
        })
    return render(request, "console/review_queue.html", {
        "flt": flt, "page": page, "rows": rows, "state_counts": state_counts, "kind_counts": kind_counts,
        "kinds": Kind.values, "categories": categories, "reasons": Category.objects.all(),
        "queue_url": _queue_url(flt),
    })


# ------------------------------------------------------------------ item page
def _evidence(asset: MediaAsset) -> dict[str, Any]:
    """Everything the item page shows about the asset: signals, timeline, frames, text, hash matches."""
    signals = list(Signal.objects.filter(asset=asset).select_related("category").order_by("-score", "id"))
    for s in signals:
        s.color = color_for(s.category_id)
        s.group = s.category_id.split("/", 1)[0]
        s.summary = evidence_summary(s)
    sexual = [s for s in signals if s.group == "sexual"]
    ctx: dict[str, Any] = {"signals": signals, "sensitive": bool(sexual)}

    # timeline: one lane per category, markers where signals have a time range
    timed = [s for s in signals if s.start is not None]
    duration = asset.duration or max([(s.end if s.end is not None else s.start) for s in timed] or [0.0])
    lanes: dict[str, dict[str, Any]] = {}
    if duration and duration > 0:
        seen: dict[tuple[str, float, float], dict[str, Any]] = {}
        for s in timed:
            end = s.end if s.end is not None and s.end >= s.start else s.start
            key = (s.category_id, round(s.start, 2), round(end, 2))
            if key in seen:
                seen[key]["sources"].add(s.source)
                continue
            left = min(max(s.start / duration * 100, 0.0), 99.4)
            width = min(max((end - s.start) / duration * 100, 0.6), 100 - left)
            lane = lanes.setdefault(s.category_id, {"code": s.category_id, "name": s.category.name,
                                                    "color": s.color, "markers": [], "max": 0.0})
            marker = {"start": s.start, "end": end, "left": round(left, 3), "width": round(width, 3),
                      "score": s.score, "sources": {s.source}}
            seen[key] = marker
            lane["markers"].append(marker)
            lane["max"] = max(lane["max"], s.score)
    for lane in lanes.values():
        for m in lane["markers"]:
            m["sources"] = ", ".join(sorted(m["sources"]))
    ctx["duration"] = duration
    ctx["lanes"] = sorted(lanes.values(), key=lambda la: -la["max"])
    ctx["label_lanes"] = label_lanes(asset.pk, duration)

    # keyframes with their detections; frames with sexual signals start blurred
    detections: dict[int | None, list[im.Detection]] = defaultdict(list)
    for d in im.Detection.objects.filter(asset=asset).order_by("-confidence"):
        detections[d.keyframe_index].append(d)
    by_frame: dict[int, list[Signal]] = defaultdict(list)
    for s in signals:
        if s.keyframe_index is not None:
            by_frame[s.keyframe_index].append(s)
    faces = {f.keyframe_index: face_boxes(f.boxes) for f in im.FaceFrame.objects.filter(asset=asset, count__gt=0)}
    frames = []
    for kf in im.Keyframe.objects.filter(asset=asset).defer("thumbnail").order_by("index")[:MAX_FRAMES]:
        sigs = by_frame.get(kf.index, [])
        frames.append({
            "index": kf.index, "time": kf.time, "url": f"/api/v1/assets/{asset.pk}/keyframes/{kf.index}.jpg",
            "aspect": f"{kf.width} / {kf.height}" if kf.width and kf.height else "16 / 9",
            "sensitive": any(s.group == "sexual" for s in sigs),
            "flags": sorted({(s.category_id, s.color) for s in sigs}),
            "boxes": _boxes(detections.get(kf.index, [])),
            "faces": faces.get(kf.index, []),
        })
    ctx["frames"] = frames
    ctx["image_boxes"] = _boxes(detections.get(None, []))
    ctx["image_faces"] = faces.get(None, []) if asset.kind == Kind.IMAGE else []
    ctx["face_total"] = len(ctx["image_faces"]) + sum(len(f["faces"]) for f in frames)

    # text with flagged spans
    spans: dict[tuple[str, int | None], list[dict[str, Any]]] = defaultdict(list)
    seen_spans: set[tuple[Any, ...]] = set()
    for f in im.TextSpanFlag.objects.filter(asset=asset).order_by("char_start"):
        code = TEXT_CATEGORIES.get(f.category, f.category)
        _add_span(spans, seen_spans, f.source, f.ref_id, f.char_start, f.char_end, code, f.score)
    for s in signals:
        ev = s.evidence or {}
        if s.source == "text" and ev.get("char_start") is not None and ev.get("char_end") is not None:
            _add_span(spans, seen_spans, ev.get("text_source") or "text", ev.get("ref_id"), ev["char_start"],
                      ev["char_end"], s.category_id, s.score)
    counter = _Counter()
    ctx["transcript"] = [_text_row(t, highlight(t.text, spans.get(("transcript", t.pk), []), counter))
                         for t in im.TranscriptSegment.objects.filter(asset=asset).order_by("index")]
    ctx["ocr"] = [_text_row(o, highlight(o.text, spans.get(("ocr", o.pk), []), counter))
                  for o in im.OcrText.objects.filter(asset=asset).order_by("start", "id")]
    doc = document_text(asset) if asset.kind == Kind.TEXT else None
    ctx["document"] = highlight(doc[:MAX_TEXT], spans.get(("text", None), []), counter) if doc is not None else None
    ctx["document_truncated"] = doc is not None and len(doc) > MAX_TEXT
    ctx["text_hits"] = counter.hits

    ctx["hash_matches"] = [_hash_match(asset, s) for s in signals if s.source == "hash"]
    return ctx


def label_lanes(asset_id: Any, duration: float | None, limit: int = 12) -> list[dict[str, Any]]:
    """Timeline lanes of what is seen: one per concept (best first), a marker per scene it is in."""
    from apps.insights.labels import scene_labels

    lanes: dict[str, dict[str, Any]] = {}
    for g in scene_labels(asset_id):
        if g["start"] is None or not duration or duration <= 0:
            continue
        end = g["end"] if g["end"] is not None and g["end"] >= g["start"] else g["start"]
        left = min(max(g["start"] / duration * 100, 0.0), 99.4)
        lane = lanes.setdefault(g["label"], {"label": g["label"], "path": " › ".join([g["label"], *g["ancestors"]]),
                                             "markers": [], "max": 0.0})
        lane["markers"].append({"start": g["start"], "end": end, "left": round(left, 3),
                                "width": round(min(max((end - g["start"]) / duration * 100, 0.6), 100 - left), 3),
                                "confidence": g["confidence"], "raw": ", ".join(g["raw"])})
        lane["max"] = max(lane["max"], g["confidence"])
    return sorted(lanes.values(), key=lambda la: -la["max"])[:limit]


def evidence_summary(s: Signal) -> str:
    """One readable line for a signal's evidence."""
    ev = s.evidence or {}
    if s.source == "hash":
        return f"bank {ev.get('bank', '?')} · distance {ev.get('distance', '?')}/256" + (
            f" · {ev['label']}" if ev.get("label") else "")
    if s.source == "faces":
        n = ev.get("count", 0)
        return f"{n} face{'s' if n != 1 else ''} (detected, not identified)"
    if ev.get("links"):
        return f"{len(ev['links'])} links: " + ", ".join(map(str, ev["links"][:3]))
    if ev.get("matched"):
        where = {"transcript": "speech", "ocr": "on screen", "text": "document"}.get(ev.get("text_source", ""), "")
        return f"“{ev['matched']}”" + (f" ({where}, {ev['method']})" if where and ev.get("method") else
                                        f" ({where})" if where else "")
    if ev.get("label"):
        return str(ev["label"]).lower().replace("_", " ")
    return ", ".join(f"{k} {v}" for k, v in ev.items())[:140]


def face_boxes(boxes: Any, margin: float = FACE_MARGIN) -> list[str]:
    """Stored face boxes as ``"left top right bottom"`` percentages of the image (``data-box`` for the
    blur overlay), each grown by ``margin`` of its size per side and clipped to the image; malformed
    entries are skipped. Detection only: a box says where a face is, never whose."""
    out = []
    for b in boxes if isinstance(boxes, list) else []:
        try:
            x1, y1, x2, y2 = (float(v) for v in (b.get("box") if isinstance(b, dict) else b))
        except (TypeError, ValueError):
            continue
        if not (x2 > x1 and y2 > y1):
            continue
        mx, my = (x2 - x1) * margin, (y2 - y1) * margin
        edges = (x1 - mx, y1 - my, x2 + mx, y2 + my)
        out.append(" ".join(f"{min(max(v, 0.0), 1.0) * 100:.2f}" for v in edges))
    return out


def _text_row(row: Any, pieces: list[dict[str, Any]]) -> dict[str, Any]:
    return {"row": row, "pieces": pieces, "hit": any(p["flags"] for p in pieces)}


def _boxes(dets: Iterable[im.Detection]) -> list[dict[str, Any]]:
    out = []
    for d in dets:
        try:
            x1, y1, x2, y2 = (min(max(float(v), 0.0), 1.0) for v in d.box)
        except (TypeError, ValueError):
            continue
        code = NUDITY_LABELS.get(d.label) if d.detector == "nudity" else (
            "violence/weapons" if d.label.lower() in WEAPON_LABELS else None)
        if code is None and d.confidence < 0.3:
            continue
        out.append({"left": round(x1 * 100, 2), "top": round(y1 * 100, 2), "width": round((x2 - x1) * 100, 2),
                    "height": round((y2 - y1) * 100, 2), "label": d.label, "confidence": d.confidence,
                    "flagged": code is not None, "color": color_for(code) if code else NEUTRAL, "code": code})
    return out


def _add_span(spans: dict[tuple[str, int | None], list[dict[str, Any]]], seen: set[tuple[Any, ...]], source: str,
              ref: int | None, start: int, end: int, code: str, score: float) -> None:
    key = (source, ref, start, end, code)
    if key in seen or end <= start:
        return
    seen.add(key)
    spans[(source, ref)].append({"start": int(start), "end": int(end), "code": code, "score": float(score),
                                 "color": color_for(code)})


class _Counter:
    """Numbers highlighted spans across the page (anchors ``hit-N``) and lists them."""

    def __init__(self) -> None:
        self.hits: list[dict[str, Any]] = []


def highlight(text: str, spans: list[dict[str, Any]], counter: _Counter | None = None) -> list[dict[str, Any]]:
    """Split ``text`` into pieces; a piece covered by flagged spans carries them (overlaps allowed)."""
    n = len(text)
    cuts = sorted({0, n, *(min(max(s["start"], 0), n) for s in spans), *(min(max(s["end"], 0), n) for s in spans)})
    pieces: list[dict[str, Any]] = []
    started: set[int] = set()
    for a, b in itertools.pairwise(cuts):
        if a == b:
            continue
        covering = [s for s in spans if s["start"] <= a and s["end"] >= b]
        if not covering:
            if pieces and not pieces[-1]["flags"]:
                pieces[-1]["text"] += text[a:b]
            else:
                pieces.append({"text": text[a:b], "flags": []})
            continue
        top = max(covering, key=lambda s: s["score"])
        piece = {"text": text[a:b], "flags": covering, "color": top["color"], "depth": len(covering),
                 "title": "; ".join(f"{s['code']} {s['score']:.2f}" for s in covering), "anchor": ""}
        fresh = [s for s in covering if id(s) not in started]
        if fresh and counter is not None:
            piece["anchor"] = f"hit-{len(counter.hits) + 1}"
            for s in fresh:
                started.add(id(s))
                counter.hits.append({"anchor": piece["anchor"], "code": s["code"], "score": s["score"],
                                     "color": s["color"], "text": text[s["start"]:s["end"]][:120]})
        pieces.append(piece)
    return pieces


def document_text(asset: MediaAsset) -> str | None:
    """The extracted text of a text asset (the document that text flags' offsets refer to)."""
    key = f"derived/{asset.sha256[:2]}/{asset.sha256}/text.json"  # workers.tasks.decode.derived_key
    try:
        with default_storage.open(key, "rb") as f:
            return str(json.loads(f.read()).get("text", ""))
    except (OSError, ValueError):
        return None
    except Exception:  # a remote store (S3) raises its own errors
        log.exception("could not read the extracted text of %s", asset.pk)
        return None


def _hash_match(asset: MediaAsset, s: Signal) -> dict[str, Any]:
    ev = s.evidence or {}
    mine = (f"/api/v1/assets/{asset.pk}/keyframes/{s.keyframe_index}.jpg" if s.keyframe_index is not None
            else f"/api/v1/assets/{asset.pk}/content" if asset.kind == Kind.IMAGE else None)
    source = MediaAsset.objects.filter(pk=ev["source_asset"]).first() if ev.get("source_asset") else None
    theirs = None
    if source is not None:
        entry = HashBankEntry.objects.filter(pk=ev.get("entry_id")).only("hash").first()
        frame = None
        if entry is not None:
            frame = im.PerceptualHash.objects.filter(asset=source, hash=entry.hash).values_list(
                "keyframe_index", flat=True).first()
        if frame is not None:
            theirs = f"/api/v1/assets/{source.pk}/keyframes/{frame}.jpg"
        elif source.kind == Kind.IMAGE:
            theirs = f"/api/v1/assets/{source.pk}/content"
    return {"signal": s, "bank": ev.get("bank", ""), "distance": ev.get("distance"), "label": ev.get("label", ""),
            "mine": mine, "theirs": theirs, "source": source,
            "source_decision": Decision.objects.filter(asset=source).first() if source else None}


def asset_history(asset_id: Any, limit: int = MAX_HISTORY) -> list[AuditEvent]:
    """The asset's audit trail, newest first (with replays and discards of its dead letters)."""
    from apps.pipeline.models import DeadLetter

    letters = [str(pk) for pk in DeadLetter.objects.filter(stage_run__asset_id=asset_id).values_list("pk", flat=True)]
    where = Q(target_type="asset", target_id=str(asset_id))
    if letters:
        where |= Q(target_type="dead_letter", target_id__in=letters)
    return list(AuditEvent.objects.filter(where).order_by("-id")[:limit])


def _reasons(item: ReviewItem) -> list[dict[str, Any]]:
    """The taxonomy for the reason picker: the item's categories first (preselected), keys 1–9, 0."""
    cats = list(Category.objects.all())
    order = {c: i for i, c in enumerate(item.categories)}
    cats.sort(key=lambda c: (order.get(c.code, len(order)), c.code))
    keys = "1234567890"
    return [{"category": c, "checked": c.code in order, "key": keys[i] if i < len(keys) else "",
             "color": color_for(c.code)} for i, c in enumerate(cats)]


def _claim_context(item: ReviewItem, user: Any) -> dict[str, Any]:
    """Who holds the item, as the page shows it: ``mine``, ``held_by`` (another moderator),
    ``own`` (the viewer uploaded it: they may look, never claim or decide), ``can_claim``."""
    now = timezone.now()
    held = item.state == ReviewState.CLAIMED and item.claim_expires_at is not None and item.claim_expires_at > now
    mine = held and item.claimed_by_id == user.pk
    own = item.asset.uploader_id is not None and item.asset.uploader_id == user.pk
    return {"mine": mine, "held_by": item.claimed_by if held and not mine else None, "own": own,
            "can_claim": item.state in PENDING and not held and not own,
            "renew_seconds": int(max(30, settings.MEDIAINTEL_REVIEW_CLAIM_TTL / 3))}


@require_GET
@moderator_required
def item_page(request: HttpRequest, pk: Any) -> HttpResponse:
    """Show an item. Opening it never claims it (link previews and prefetchers GET pages): the
    Claim button (``c``) does, and so does deciding; another moderator's claim makes it read-only."""
    get_object_or_404(ReviewItem, pk=pk)
    flt = QueueFilter.from_query(request.GET)
    item = ReviewItem.objects.select_related("asset", "claimed_by", "policy_version__policy").get(pk=pk)
    asset = item.asset
    now = timezone.now()
    ctx = {
        "item": item, "asset": asset, "flt": flt, **_claim_context(item, request.user),
        "priority": priority(item, now), "position": _position(item, flt),
        "next_url": _nav(item, flt, 1), "prev_url": _nav(item, flt, -1), "queue_url": _queue_url(flt),
        "reasons": _reasons(item), "item_categories": [(c, color_for(c)) for c in item.categories],
        "decisions": Decision.objects.filter(asset=asset).select_related("moderator", "policy_version__policy"),
        "other_items": ReviewItem.objects.filter(asset=asset).exclude(pk=item.pk).order_by("-created_at"),
        "history": asset_history(asset.pk),
        **_evidence(asset),
    }
    return render(request, "console/review_item.html", ctx)


def _nav(item: ReviewItem, flt: QueueFilter, step: int) -> str:
    pk = neighbour(item, flt, step)
    return _item_url(pk, flt) if pk else ""


# ------------------------------------------------------------------ actions (POST, CSRF-protected)
def _ensure_claimed(item_id: Any, user: Any) -> None:
    """Hold the item (renewing our own claim); refused when another moderator holds it."""
    now = timezone.now()
    if not ReviewItem.objects.filter(pk=item_id, state=ReviewState.CLAIMED, claimed_by=user,
                                     claim_expires_at__gt=now).exists():
        actions.claim_review(item_id, user)


@require_POST
@moderator_required
def decide(request: HttpRequest, pk: Any) -> HttpResponse:
    item = get_object_or_404(ReviewItem.objects.select_related("asset"), pk=pk)
    flt = QueueFilter.from_query(request.POST)
    outcome = request.POST.get("outcome", "")
    reasons = [] if outcome == Outcome.APPROVE else [c for c in request.POST.getlist("reasons") if c]
    note = request.POST.get("note", "").strip()[:2000]
    try:
        if outcome not in Outcome.values:
            raise ModerationError("choose approve, reject or escalate", "invalid", 400)
        if outcome == Outcome.REJECT and not reasons:
            raise ModerationError("a rejection needs at least one reason", "invalid", 400)
        _ensure_claimed(item.pk, request.user)
        actions.decide_review(item.pk, request.user, outcome, reason_codes=reasons, note=note)
    except ModerationError as e:
        messages.error(request, f"Not decided: {e}")
        return redirect(_item_url(item.pk, flt))
    label = item.asset.title or item.asset.filename or str(item.asset_id)[:8]
    messages.success(request, f"{OUTCOME_DONE[outcome]} “{label}”" + (f" ({', '.join(reasons)})" if reasons else ""))
    nxt = neighbour(item, flt, 1, workable_for=request.user) or neighbour(item, flt, -1, workable_for=request.user)
    return redirect(_item_url(nxt, flt) if nxt else _queue_url(flt))


@require_POST
@moderator_required
def release(request: HttpRequest, pk: Any) -> HttpResponse:
    """Give the item back to the queue (sent by the page on leaving, or the Release button)."""
    try:
        actions.release_review(pk, request.user)
        released = True
    except ModerationError:
        released = False
    if request.POST.get("beacon") or request.htmx:
        return HttpResponse(status=204)
    if released:
        messages.info(request, "Released the item back to the queue.")
    return redirect(_queue_url(QueueFilter.from_query(request.POST)))


@require_POST
@moderator_required
def claim(request: HttpRequest, pk: Any) -> HttpResponse:
    """The explicit Claim action: hold the item for ``MEDIAINTEL_REVIEW_CLAIM_TTL`` seconds."""
    flt = QueueFilter.from_query(request.POST)
    try:
        actions.claim_review(pk, request.user)
    except ModerationError as e:
        if e.code == "not_found":
            raise Http404("no such review item") from e
        messages.error(request, f"Not claimed: {e}")
    return redirect(_item_url(pk, flt))


@require_POST
@moderator_required
def renew(request: HttpRequest, pk: Any) -> HttpResponse:
    """Renew the page's claim (htmx, while the page stays open); the fragment shows the claim.

    Only a claim the moderator still holds is extended: renewing never claims a released item.
    """
    get_object_or_404(ReviewItem, pk=pk)
    if ReviewItem.objects.filter(pk=pk, state=ReviewState.CLAIMED, claimed_by=request.user).exists():
        with contextlib.suppress(ModerationError):
            actions.claim_review(pk, request.user)  # extends our own claim
    item = ReviewItem.objects.select_related("claimed_by", "asset").get(pk=pk)
    return render(request, "console/_claim_status.html", {
        "item": item, "flt": QueueFilter.from_query(request.POST), **_claim_context(item, request.user)})


def _uuids(values: Iterable[str]) -> list[uuid.UUID]:
    out = []
    for v in values:
        try:
            out.append(uuid.UUID(v))
        except ValueError:
            continue
    return out


@require_POST
@moderator_required
def bulk(request: HttpRequest) -> HttpResponse:
    """Approve or reject several items; each goes through claim + decide, so a race loses cleanly."""
    flt = QueueFilter.from_query(request.POST)
    back = _queue_url(flt)
    ids = list(dict.fromkeys(_uuids(request.POST.getlist("items"))))[:BULK_LIMIT]
    outcome = request.POST.get("outcome", "")
    reasons = [c for c in request.POST.getlist("reasons") if c] if outcome == Outcome.REJECT else []
    note = request.POST.get("note", "").strip()[:2000]
    if outcome not in (Outcome.APPROVE, Outcome.REJECT):
        messages.error(request, "Bulk actions approve or reject.")
        return redirect(back)
    if not ids:
        messages.error(request, "Select at least one item.")
        return redirect(back)
    if outcome == Outcome.REJECT and not reasons:
        messages.error(request, "A bulk rejection needs a reason.")
        return redirect(back)
    if unknown := set(reasons) - set(Category.objects.filter(code__in=reasons).values_list("code", flat=True)):
        messages.error(request, f"Unknown reason: {', '.join(sorted(unknown))}")
        return redirect(back)
    done, skipped = 0, []
    for pk in ids:
        try:
            actions.claim_review(pk, request.user)
        except ModerationError as e:
            skipped.append(f"{str(pk)[:8]}: {e}")
            continue
        try:
            actions.decide_review(pk, request.user, outcome, reason_codes=reasons, note=note)
            done += 1
        except ModerationError as e:
            skipped.append(f"{str(pk)[:8]}: {e}")
            with contextlib.suppress(ModerationError):
                actions.release_review(pk, request.user)
    if done:
        messages.success(request, f"{OUTCOME_DONE[outcome]} {done} item{'s' if done != 1 else ''}"
                         + (f" ({', '.join(reasons)})" if reasons else "") + ".")
    if skipped:
        messages.warning(request, f"Skipped {len(skipped)}: " + "; ".join(skipped[:10]))
    return redirect(back)
