"""Console pages of the asset library: the library with per-stage progress, and an asset's page
with its stages (and, for moderators, its history, reviews, decisions, signals and dead letters).

Uploaders see only their own assets; moderators and admins see every asset.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from apps.assets.models import MediaAsset, ModerationState
from apps.core.roles import ADMIN, MODERATOR, has_role
from apps.insights.labels import scene_labels
from apps.moderation.evidence import color_for, label_lanes
from apps.moderation.evidence_queries import asset_history
from apps.moderation.models import Decision, ReviewItem, Signal
from apps.moderation.services import PENDING
from apps.pipeline.console import stage_progress
from apps.pipeline.models import DeadLetter, StageRun


def _assets_for(request: HttpRequest):
    qs = MediaAsset.objects.all()
    return qs if has_role(request.user, MODERATOR) else qs.filter(uploader=request.user)


def _pending_reviews(asset_ids: list[Any]) -> dict[str, Any]:
    return {str(a): pk for a, pk in ReviewItem.objects.filter(asset_id__in=asset_ids, state__in=PENDING)
            .values_list("asset_id", "pk")}


@login_required
def library(request: HttpRequest) -> HttpResponse:
    qs = _assets_for(request)
    if kind := request.GET.get("kind"):
        qs = qs.filter(kind=kind)
    if status := request.GET.get("status"):
        qs = qs.filter(status=status)
    if moderation := request.GET.get("moderation"):
        qs = qs.filter(moderation_state=moderation)
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    runs: dict[str, list[StageRun]] = {}
    assets = list(page.object_list)
    for r in StageRun.objects.filter(asset__in=assets, current=True).order_by("id"):
        runs.setdefault(str(r.asset_id), []).append(r)
    moderator = has_role(request.user, MODERATOR)
    reviews = _pending_reviews([a.pk for a in assets]) if moderator else {}
    rows = [(a, runs.get(str(a.pk), []), stage_progress(runs.get(str(a.pk), [])), reviews.get(str(a.pk)))
            for a in assets]
    template = "console/_library_rows.html" if request.htmx else "console/library.html"
    return render(request, template, {"page": page, "rows": rows, "filters": request.GET,
                                      "moderation_states": ModerationState.values})


@login_required
def asset_detail(request: HttpRequest, pk: str) -> HttpResponse:
    asset = get_object_or_404(_assets_for(request).select_related("uploader"), pk=pk)
    runs = list(StageRun.objects.filter(asset=asset, current=True).order_by("id"))
    ctx: dict[str, Any] = {"asset": asset, "runs": runs, "progress": stage_progress(runs)}
    if has_role(request.user, MODERATOR):
        ctx.update(
            moderator=True, history=asset_history(asset.pk),
            reviews=ReviewItem.objects.filter(asset=asset).select_related("claimed_by").order_by("-created_at"),
            decisions=Decision.objects.filter(asset=asset).select_related("moderator", "policy_version__policy"),
            signals=[(s, color_for(s.category_id)) for s in Signal.objects.filter(asset=asset).order_by("-score")[:50]],
            dead_letters=DeadLetter.objects.filter(stage_run__asset=asset, replayed_at__isnull=True,
                                                   discarded=False).select_related("stage_run"),
            can_replay=has_role(request.user, ADMIN),
            label_lanes=label_lanes(scene_labels(asset.pk), asset.duration),
        )
    if request.htmx and request.GET.get("part") == "stages":
        return render(request, "console/_asset_stages.html", ctx)
    return render(request, "console/asset.html", ctx)
