"""Console pages: asset library with per-stage progress, asset detail, jobs, dead letters."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from apps.assets.models import MediaAsset
from apps.core.roles import MODERATOR, has_role
from apps.pipeline.models import DeadLetter, Job, StageRun


def _assets_for(request: HttpRequest):
    qs = MediaAsset.objects.all()
    return qs if has_role(request.user, MODERATOR) else qs.filter(uploader=request.user)


@login_required
def library(request: HttpRequest) -> HttpResponse:
    qs = _assets_for(request)
    if kind := request.GET.get("kind"):
        qs = qs.filter(kind=kind)
    if status := request.GET.get("status"):
        qs = qs.filter(status=status)
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    runs: dict[str, list[StageRun]] = {}
    for r in StageRun.objects.filter(asset__in=list(page.object_list), current=True).order_by("id"):
        runs.setdefault(str(r.asset_id), []).append(r)
    rows = [(a, runs.get(str(a.pk), [])) for a in page.object_list]
    template = "console/_library_rows.html" if request.htmx else "console/library.html"
    return render(request, template, {"page": page, "rows": rows})


@login_required
def asset_detail(request: HttpRequest, pk: str) -> HttpResponse:
    asset = get_object_or_404(_assets_for(request), pk=pk)
    runs = StageRun.objects.filter(asset=asset, current=True).order_by("id")
    return render(request, "console/asset.html", {"asset": asset, "runs": runs})


@login_required
def jobs(request: HttpRequest) -> HttpResponse:
    qs = Job.objects.select_related("asset")
    if not has_role(request.user, MODERATOR):
        qs = qs.filter(asset__uploader=request.user)
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    return render(request, "console/jobs.html", {"page": page})


@login_required
def dead_letters(request: HttpRequest) -> HttpResponse:
    page = Paginator(DeadLetter.objects.select_related("stage_run").filter(
        replayed_at__isnull=True, discarded=False), 50).get_page(request.GET.get("page"))
    return render(request, "console/dead_letters.html", {"page": page, "can_replay": has_role(request.user, "admin")})
