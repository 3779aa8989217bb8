"""The review queue's order and filters.

Priority is severity + age in days. For any two items the difference of their priorities is the
difference of their ranks (``rank`` = severity − created_at in days), so ordering by rank is
ordering by priority at any moment, and a rank is a stable cursor for next/previous: the queue
is ordered by (rank descending, id) everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.db import connection
from django.db.models import ExpressionWrapper, F, FloatField, Func, Q, QuerySet
from django.utils import timezone

from apps.assets.models import Kind
from apps.moderation.models import ReviewItem, ReviewState
from apps.moderation.services import PENDING

DAY = 86400.0  # one priority point per day an item waits
STATE_FILTERS: dict[str, tuple[str, ...] | None] = {
    "pending": tuple(PENDING), "open": (ReviewState.OPEN,), "claimed": (ReviewState.CLAIMED,),
    "escalated": (ReviewState.ESCALATED,), "decided": (ReviewState.DECIDED,), "all": None,
}


def priority(item: Any, now: Any = None) -> float:
    """Severity + days waited (``item``: its ``severity`` and ``created_at``). Pure."""
    now = now or timezone.now()
    return item.severity + (now - item.created_at).total_seconds() / DAY


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


def category_counts(qs: QuerySet[ReviewItem]) -> dict[str, int]:
    sql, params = qs.values("categories").query.sql_with_params()
    with connection.cursor() as cur:
        cur.execute(f"SELECT c, count(*) FROM ({sql}) q, jsonb_array_elements_text(q.categories) c "  # noqa: S608
                    "GROUP BY c", params)
        return dict(cur.fetchall())


def held_by_other(user: Any, now: Any) -> Q:
    return Q(state=ReviewState.CLAIMED, claim_expires_at__gt=now) & ~Q(claimed_by=user)


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
        qs = qs.exclude(held_by_other(workable_for, timezone.now()))
    return qs.values_list("pk", flat=True).first()


def position(item: ReviewItem, flt: QueueFilter) -> tuple[int, int] | None:
    """(1-based place, total) of the item in the filtered queue, or None when it is not in it."""
    qs = ranked(flt.apply(ReviewItem.objects.all()))
    rank = qs.filter(pk=item.pk).values_list("rank", flat=True).first()
    if rank is None:
        return None
    before = qs.filter(Q(rank__gt=rank) | Q(rank=rank, pk__lt=item.pk)).count()
    return before + 1, qs.count()
