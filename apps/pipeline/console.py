"""Console pages of the pipeline: jobs with per-stage progress, dead letters (admins replay or
discard them here, through ``apps.pipeline.actions``), and ``stage_progress``, the progress summary
the asset pages (``apps.assets.console``) show too. Uploaders see only their own jobs; dead letters
are for moderators and admins.
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

from apps.audit.services import Actor
from apps.core.roles import ADMIN, MODERATOR, has_role
from apps.pipeline.actions import discard_dead_letter, replay_dead_letter
from apps.pipeline.health import stalled_since
from apps.pipeline.models import BROKEN, IN_FLIGHT, SATISFIED, DeadLetter, Job, JobStatus, StageRun


def stage_progress(runs: Iterable[StageRun]) -> dict[str, Any]:
    """Counts and bar widths (percent) of finished, broken, in-flight and waiting stages, and since
    when the earliest stalled stage has been stalled (``stalled_since``: None when none is)."""
    runs = list(runs)
    stalled = [t for t in (stalled_since(r) for r in runs if r.status in IN_FLIGHT) if t is not None]
    total = len(runs) or 1
    done = sum(r.status in SATISFIED for r in runs)
    broken = sum(r.status in BROKEN for r in runs)
    flight = sum(r.status in IN_FLIGHT for r in runs)
    return {"total": len(runs), "done": done, "broken": broken, "running": flight,
            "waiting": len(runs) - done - broken - flight,
            "done_pct": round(done * 100 / total, 1), "broken_pct": round(broken * 100 / total, 1),
            "running_pct": round(flight * 100 / total, 1),
            "percent": round(done * 100 / total) if runs else 0,
            "stalled": len(stalled), "stalled_since": min(stalled) if stalled else None}


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
