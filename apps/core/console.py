"""Console pages: asset library with per-stage progress, asset detail with its history, jobs, dead
letters (admins replay or discard them here). The moderator pages live in ``apps.moderation.console``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from apps.assets.models import MediaAsset, ModerationState
from apps.audit.services import Actor
from apps.core.roles import ADMIN, MODERATOR, has_role
from apps.pipeline.models import DeadLetter, Job, JobStatus, StageRun, StageStatus

IN_FLIGHT = {StageStatus.QUEUED, StageStatus.RUNNING, StageStatus.RETRYING}
BROKEN = {StageStatus.DEAD, StageStatus.FAILED}
FINISHED = {StageStatus.DONE, StageStatus.SKIPPED}


def stage_progress(runs: Iterable[StageRun]) -> dict[str, Any]:
    """Counts and bar widths (percent) of finished, broken, in-flight and waiting stages, and since
    when the earliest stalled stage has been stalled (``stalled_since``: None when none is)."""
    from apps.pipeline.health import stalled_since

    runs = list(runs)
    stalled = [t for t in (stalled_since(r) for r in runs if r.status in IN_FLIGHT) if t is not None]
    total = len(runs) or 1
    done = sum(r.status in FINISHED for r in runs)
    broken = sum(r.status in BROKEN for r in runs)
    flight = sum(r.status in IN_FLIGHT for r in runs)
    return {"total": len(runs), "done": done, "broken": broken, "running": flight,
            "waiting": len(runs) - done - broken - flight,
            "done_pct": round(done * 100 / total, 1), "broken_pct": round(broken * 100 / total, 1),
            "running_pct": round(flight * 100 / total, 1),
            "percent": round(done * 100 / total) if runs else 0,
            "stalled": len(stalled), "stalled_since": min(stalled) if stalled else None}


def _assets_for(request: HttpRequest):
    qs = MediaAsset.objects.all()
    return qs if has_role(request.user, MODERATOR) else qs.filter(uploader=request.user)


def _pending_reviews(asset_ids: list[Any]) -> dict[str, Any]:
    from apps.moderation.models import ReviewItem
    from apps.moderation.services import PENDING

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
        from apps.moderation.console import asset_history, color_for, label_lanes
        from apps.moderation.models import Decision, ReviewItem, Signal

        ctx.update(
            moderator=True, history=asset_history(asset.pk),
            reviews=ReviewItem.objects.filter(asset=asset).select_related("claimed_by").order_by("-created_at"),
            decisions=Decision.objects.filter(asset=asset).select_related("moderator", "policy_version__policy"),
            signals=[(s, color_for(s.category_id)) for s in Signal.objects.filter(asset=asset).order_by("-score")[:50]],
            dead_letters=DeadLetter.objects.filter(stage_run__asset=asset, replayed_at__isnull=True,
                                                   discarded=False).select_related("stage_run"),
            can_replay=has_role(request.user, ADMIN),
            label_lanes=label_lanes(asset.pk, asset.duration),
        )
    if request.htmx and request.GET.get("part") == "stages":
        return render(request, "console/_asset_stages.html", ctx)
    return render(request, "console/asset.html", ctx)


@login_required
def jobs(request: HttpRequest) -> HttpResponse:
    qs = Job.objects.select_related("asset")
    if not has_role(request.user, MODERATOR):
        qs = qs.filter(asset__uploader=request.user)
    status = request.GET.get("status", "")
    if status in JobStatus.values:
        qs = qs.filter(status=status)
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    stages: dict[Any, list[StageRun]] = {}
    for r in StageRun.objects.filter(job__in=list(page.object_list)).order_by("id"):
        stages.setdefault(r.job_id, []).append(r)
    rows = [(j, stages.get(j.pk, []), stage_progress(stages.get(j.pk, []))) for j in page.object_list]
    return render(request, "console/jobs.html", {"page": page, "rows": rows, "status": status,
                                                 "statuses": JobStatus.values})


@login_required
def dead_letters(request: HttpRequest) -> HttpResponse:
    if not has_role(request.user, MODERATOR):
        raise PermissionDenied("Dead letters are for moderators and admins.")
    page = Paginator(DeadLetter.objects.select_related("stage_run__asset").filter(
        replayed_at__isnull=True, discarded=False), 50).get_page(request.GET.get("page"))
    return render(request, "console/dead_letters.html", {"page": page, "can_replay": has_role(request.user, ADMIN)})


@require_POST
@login_required
def dead_letter_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    """Replay (send the dead stage again, attempts reset) or discard a dead letter; admins only, audited."""
    from apps.pipeline.actions import discard_dead_letter, replay_dead_letter

    if not has_role(request.user, ADMIN):
        raise PermissionDenied("Replaying and discarding dead letters needs the admin role.")
    if action not in ("replay", "discard"):
        raise PermissionDenied("Unknown action.")
    dl = get_object_or_404(DeadLetter.objects.select_related("stage_run"), pk=pk)
    stage = dl.stage_run.stage
    if action == "replay":
        if replay_dead_letter(dl.pk, actor=Actor.user(request.user)):
            messages.success(request, f"Replaying {stage} of asset {str(dl.stage_run.asset_id)[:8]}.")
        else:
            messages.warning(request, f"Dead letter #{dl.pk} was not replayed: its stage is no longer dead.")
    else:
        discard_dead_letter(dl.pk, actor=Actor.user(request.user))
        messages.info(request, f"Discarded dead letter #{dl.pk} ({stage}).")
    nxt = request.POST.get("next", "")
    if nxt and url_has_allowed_host_and_scheme(nxt, allowed_hosts={request.get_host()},
                                               require_https=request.is_secure()):
        return redirect(nxt)
    return redirect(reverse("console-dlq"))
