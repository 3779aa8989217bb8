"""The per-asset report: one printable HTML page (print stylesheet → PDF from any browser) with the
asset's facts, keyframe thumbnails, the timeline of flags, the transcript, every decision and the
statement of reasons of each restricting one (in the DSA Transparency Database fields).

Invariants: read-only; moderators and admins only (it shows review data); the page needs no script
and loads nothing from elsewhere — thumbnails are inline ``data:`` JPEGs and the timeline is inline
SVG, so it prints the same from the console, from the API and from a saved file.
"""

from __future__ import annotations

import base64
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.utils import timezone
from django.views.decorators.http import require_GET

from apps.assets.models import MediaAsset
from apps.insights.models import Keyframe, TranscriptSegment
from apps.moderation import dsa
from apps.moderation.console import moderator_required
from apps.moderation.evidence import color_for
from apps.moderation.models import Category, Decision, Outcome, Signal
from apps.moderation.sor_export import facts_of

LANE_H, LANE_GAP, LABEL_W, TRACK_W = 18, 6, 190, 620
#: The page needs its stylesheet and inline images, nothing else: no script runs, whatever the data holds.
CSP = "default-src 'none'; style-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'self'"


def _thumb(kf: Any) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(bytes(kf.thumbnail)).decode("ascii")


def _timeline(asset: MediaAsset, signals: list[Signal]) -> dict[str, Any]:
    """One lane per category; a flag is a bar over its time range (a tick at a frame), positions in SVG units."""
    timed = [s for s in signals if s.start is not None]
    span = float(asset.duration or 0) or max([s.end or s.start or 0 for s in timed] + [1.0])
    lanes: list[dict[str, Any]] = []
    for code in sorted({s.category_id for s in timed}):
        marks = []
        for s in (s for s in timed if s.category_id == code):
            x = LABEL_W + TRACK_W * min(s.start / span, 1)
            w = max(3.0, TRACK_W * max((s.end or s.start) - s.start, 0) / span)
            marks.append({"x": round(x, 1), "w": round(min(w, LABEL_W + TRACK_W - x), 1) or 3, "signal": s})
        y = len(lanes) * (LANE_H + LANE_GAP)
        lanes.append({"code": code, "color": color_for(code), "y": y, "ty": y + LANE_H - 5, "marks": marks})
    ticks = [{"x": round(LABEL_W + TRACK_W * t / span, 1), "t": t}
             for t in range(0, int(span) + 1, max(1, int(span // 8) or 1))]
    height = max(len(lanes), 1) * (LANE_H + LANE_GAP) + 16
    return {"lanes": lanes, "span": span, "ticks": ticks, "width": LABEL_W + TRACK_W + 30, "height": height,
            "axis_y": height - 14, "lane_h": LANE_H, "label_w": LABEL_W, "track_w": TRACK_W,
            "untimed": [s for s in signals if s.start is None]}


def report_context(asset: MediaAsset) -> dict[str, Any]:
    signals = list(Signal.objects.filter(asset=asset).select_related("category").order_by("start", "-score"))
    categories = {c.code: c for c in Category.objects.all()}
    decisions = []
    for d in Decision.objects.filter(asset=asset).select_related("moderator", "policy_version__policy") \
            .order_by("created_at"):
        statement = None
        if d.outcome == Outcome.REJECT:
            st = dsa.statement_for(facts_of(d, categories))
            statement = [(f.name, ", ".join(v) if isinstance(v, list) else v)
                         for f in dsa.FIELDS if (v := st.get(f.name)) not in (None, "", [])]
        decisions.append({"decision": d, "statement": statement})
    return {
        "asset": asset,
        "generated_at": timezone.now(),
        "keyframes": [{"kf": k, "src": _thumb(k)} for k in Keyframe.objects.filter(asset=asset).order_by("index")],
        "timeline": _timeline(asset, signals),
        "signals": signals,
        "transcript": list(TranscriptSegment.objects.filter(asset=asset).order_by("index")),
        "decisions": decisions,
    }


def render_report(asset: MediaAsset, request: HttpRequest | None = None) -> str:
    return render_to_string("console/asset_report.html", report_context(asset), request=request)


def guard(resp: Any) -> Any:
    """The report's own Content-Security-Policy (and no sniffing) on a response carrying it."""
    resp["Content-Security-Policy"] = CSP
    resp["X-Content-Type-Options"] = "nosniff"
    return resp


@require_GET
@moderator_required
def report_page(request: HttpRequest, pk: Any) -> HttpResponse:
    """The report in the console (Ctrl+P prints it; the print stylesheet drops the navigation)."""
    asset = get_object_or_404(MediaAsset, pk=pk)
    return guard(HttpResponse(render_report(asset, request), content_type="text/html; charset=utf-8"))
