"""Moderator console: the review queue, the review item page (claim, evidence, one-key decisions),
bulk decisions. Server-rendered; htmx and ``moderation/console.js`` (plain JS) add keyboard use,
seeking, claim renewal and release on leaving. Every write is an audited action of ``apps.moderation.actions``.
The item page's evidence is read by ``apps.moderation.evidence_queries`` and assembled by the pure
functions of ``apps.moderation.evidence``; the queue's order by ``apps.moderation.queue``.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from apps.assets.models import Kind
from apps.core.roles import MODERATOR, has_role
from apps.moderation import actions, evidence
from apps.moderation.evidence import color_for
from apps.moderation.evidence_queries import asset_history, evidence_data
from apps.moderation.models import (
    Category,
    Decision,
    Outcome,
    ReviewItem,
    ReviewState,
)
from apps.moderation.queue import STATE_FILTERS, QueueFilter, category_counts, neighbour, position, priority, ranked
from apps.moderation.services import PENDING, ModerationError

log = logging.getLogger(__name__)

PAGE_SIZE = 50
BULK_LIMIT = 200

OUTCOME_DONE = {Outcome.APPROVE: "Approved", Outcome.REJECT: "Rejected", Outcome.ESCALATE: "Escalated"}


def moderator_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Logged in (else the login page) and a moderator or admin (else 403)."""

    @wraps(view)
    @login_required
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not has_role(request.user, MODERATOR):
            raise PermissionDenied("Review pages need the moderator role.")
        return view(request, *args, **kwargs)

    return wrapped


def _item_url(pk: Any, flt: QueueFilter) -> str:
    url = reverse("review-item", args=[pk])
    return f"{url}?{flt.query}" if flt.query else url


def _queue_url(flt: QueueFilter) -> str:
    url = reverse("review-queue")
    return f"{url}?{flt.query}" if flt.query else url


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
    cat_counts = category_counts(flt.apply(base, skip="category"))
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
        "priority": priority(item, now), "position": position(item, flt),
        "next_url": _nav(item, flt, 1), "prev_url": _nav(item, flt, -1), "queue_url": _queue_url(flt),
        "reasons": _reasons(item), "item_categories": [(c, color_for(c)) for c in item.categories],
        "decisions": Decision.objects.filter(asset=asset).select_related("moderator", "policy_version__policy"),
        "other_items": ReviewItem.objects.filter(asset=asset).exclude(pk=item.pk).order_by("-created_at"),
        "history": asset_history(asset.pk),
        **evidence.assemble(evidence_data(asset)),
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
