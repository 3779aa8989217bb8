"""Moderation actions: automated moderation of an asset, human review, appeals, banks, webhooks.

Every action is audited (``apps.audit``) and emits its webhook event through the outbox in the
same transaction. Views, commands and the moderate stage call these; nothing else writes
moderation state.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from apps.assets.models import MediaAsset, ModerationState
from apps.audit.services import Actor, record
from apps.core.timestamps import rfc3339
from apps.events.services import publish
from apps.moderation import policy as engine
from apps.moderation.models import (
    Appeal,
    AppealState,
    Category,
    Decision,
    HashBank,
    HashBankEntry,
    Outcome,
    Policy,
    PolicyVersion,
    ReviewItem,
    ReviewState,
    Signal,
    WebhookDelivery,
    WebhookSubscription,
)
from apps.moderation.signals import collect

PENDING = (ReviewState.OPEN, ReviewState.CLAIMED, ReviewState.ESCALATED)
STATE_FOR = {Outcome.APPROVE: ModerationState.APPROVED, Outcome.REJECT: ModerationState.BLOCKED,
             Outcome.ESCALATE: ModerationState.IN_REVIEW}


class ModerationError(Exception):
    """A refused action; ``code`` is stable for API errors."""

    def __init__(self, message: str, code: str, status: int = 409) -> None:
        super().__init__(message)
        self.code, self.status = code, status


# ------------------------------------------------------------------ policy
def ensure_defaults() -> None:
    """The built-in taxonomy and default policy (seeded by migration; restored if a database was emptied)."""
    from apps.moderation.taxonomy import DEFAULT_RULES, TAXONOMY

    existing = set(Category.objects.values_list("code", flat=True))
    Category.objects.bulk_create([Category(code=c, name=n, severity=sev, description=d, builtin=True)
                                  for c, n, sev, d in TAXONOMY if c not in existing], ignore_conflicts=True)
    with transaction.atomic():
        policy, _ = Policy.objects.select_for_update().get_or_create(name="default")
        if policy.active_version_id is None:
            last = policy.versions.order_by("-number").first()
            policy.active_version = last or PolicyVersion.objects.create(
                policy=policy, number=1, rules=DEFAULT_RULES, note="built-in default")
            policy.save(update_fields=["active_version"])


def active_policy_version(name: str = "default") -> PolicyVersion:
    policy = Policy.objects.select_related("active_version__policy").filter(name=name).first()
    if policy is None and name == "default":
        ensure_defaults()
        policy = Policy.objects.select_related("active_version__policy").get(name=name)
    if policy is None:
        raise ModerationError(f"no policy named {name!r}", "no_policy", 500)
    if policy.active_version is None:
        raise ModerationError(f"policy {name!r} has no active version", "no_policy", 500)
    return policy.active_version


def new_policy_version(rules: dict[str, Any], *, user: Any, note: str = "", name: str = "default") -> PolicyVersion:
    """Validate and store rules as the next version, and make it active (audited)."""
    problems = engine.validate_rules(rules, Category.objects.values_list("code", flat=True))
    if problems:
        raise ModerationError("; ".join(problems), "invalid_policy", 400)
    with transaction.atomic():
        policy, _ = Policy.objects.select_for_update().get_or_create(name=name)
        last = policy.versions.order_by("-number").first()
        v = PolicyVersion.objects.create(policy=policy, number=(last.number + 1 if last else 1), rules=rules,
                                         note=note[:300], created_by=user if getattr(user, "pk", None) else None)
        policy.active_version = v
        policy.save(update_fields=["active_version"])
        record("policy.versioned", target_type="policy", target_id=policy.name, actor=_actor(user),
               payload={"version": v.number, "note": note})
    return v


def _actor(user: Any) -> Actor:
    return Actor.user(user) if getattr(user, "is_authenticated", False) else Actor.system("moderation")


# ------------------------------------------------------------------ automated moderation
def moderate_asset(asset: MediaAsset) -> dict[str, Any]:
    """Signals from insights → verdict under the active policy → decision or review item.

    Idempotent per policy version: signals are replaced; a pending review item is updated; a human
    decision is never overridden by automation.
    """
    pv = active_policy_version()
    if not Category.objects.filter(builtin=True).exists():
        ensure_defaults()
    rows = collect(asset.pk)
    Signal.objects.filter(asset=asset).delete()
    Signal.objects.bulk_create([Signal(asset=asset, **r) for r in rows])
    _publish_bank_matches(asset, rows)
    severities = dict(Category.objects.values_list("code", "severity"))
    verdict = engine.evaluate([engine.SignalIn(r["category_id"], r["score"], r["source"]) for r in rows],
                              pv.rules, severities)
    summary = {"policy": pv.label, "action": verdict.action, "signals": len(rows),
               "categories": {k: round(v, 3) for k, v in verdict.scores.items()}}
    if Decision.objects.filter(asset=asset, automated_decision=False).exists():
        summary["kept"] = "a human decision exists; automation does not override it"
        return summary
    pending = ReviewItem.objects.filter(asset=asset, state__in=PENDING).first()
    system = Actor.system("policy-engine")
    if verdict.action == engine.REVIEW:
        if pending:
            pending.severity, pending.categories, pending.policy_version = (
                verdict.severity, verdict.reason_codes, pv)
            pending.save(update_fields=["severity", "categories", "policy_version", "updated_at"])
        else:
            item = ReviewItem.objects.create(asset=asset, severity=verdict.severity,
                                             categories=verdict.reason_codes, policy_version=pv)
            record("review.created", target_type="asset", target_id=asset.pk, actor=system,
                   payload={"review_item": str(item.pk), "categories": verdict.reason_codes,
                            "policy": pv.label})
            publish("review.created", {"review_item": item.pk, "asset": asset.pk,
                                       "categories": verdict.reason_codes, "severity": verdict.severity},
                    asset_id=asset.pk)
        _set_state(asset, ModerationState.IN_REVIEW)
        return summary
    outcome = Outcome.REJECT if verdict.action == engine.BLOCK else Outcome.APPROVE
    if pending:
        ReviewItem.objects.filter(pk=pending.pk).update(state=ReviewState.DECIDED, decided_at=timezone.now())
    _decide(asset, outcome, reason_codes=verdict.reason_codes, moderator=None, pv=pv, automated_detection=True,
            automated_decision=True, ground=verdict.ground(pv.label), note="", item=pending, actor=system)
    return summary


def _publish_bank_matches(asset: MediaAsset, rows: list[dict[str, Any]]) -> None:
    """One ``bank.matched`` event per hash bank the asset's hashes were found in."""
    per_bank: dict[str, list[int]] = {}
    for r in rows:
        if r["source"] == "hash" and r["evidence"].get("bank"):
            per_bank.setdefault(r["evidence"]["bank"], []).append(int(r["evidence"].get("distance", 0)))
    kinds = dict(HashBank.objects.filter(name__in=list(per_bank)).values_list("name", "kind"))
    for bank, distances in sorted(per_bank.items()):
        publish("bank.matched", {"asset": asset.pk, "bank": bank, "bank_kind": kinds.get(bank, ""),
                                 "matches": len(distances), "min_distance": min(distances)}, asset_id=asset.pk)


def _set_state(asset: MediaAsset, state: str) -> None:
    MediaAsset.objects.filter(pk=asset.pk).update(moderation_state=state, updated_at=timezone.now())


def _decide(asset: MediaAsset, outcome: str, *, reason_codes: list[str], moderator: Any, pv: PolicyVersion | None,
            automated_detection: bool, automated_decision: bool, ground: str, note: str,
            item: ReviewItem | None, actor: Actor) -> Decision:
    d = Decision.objects.create(asset=asset, review_item=item, outcome=outcome, reason_codes=reason_codes,
                                note=note, moderator=moderator, policy_version=pv,
                                automated_detection=automated_detection, automated_decision=automated_decision,
                                ground=ground)
    _set_state(asset, STATE_FOR[outcome])
    payload = {"decision": str(d.pk), "asset": str(asset.pk), "outcome": outcome, "reason_codes": reason_codes,
               "automated_detection": automated_detection, "automated_decision": automated_decision,
               "ground": ground, "policy": pv.label if pv else None}
    record("moderation.decided", target_type="asset", target_id=asset.pk, actor=actor, payload=payload)
    if item is not None and not automated_decision:
        publish("review.decided", {"review_item": item.pk, "asset": asset.pk, "decision": d.pk, "outcome": outcome},
                asset_id=asset.pk)
    publish("decision.made", payload, asset_id=asset.pk)
    if outcome == Outcome.REJECT and pv and pv.rules.get("bank_on_reject"):
        bank = HashBank.objects.filter(name=pv.rules["bank_on_reject"]).first()
        if bank:
            add_asset_to_bank(bank, asset, user=moderator)
    return d


# ------------------------------------------------------------------ separation of duties
def ensure_not_own(user: Any, *, uploader_id: Any = None, appellant_id: Any = None) -> None:
    """Refuse a moderation act on one's own upload or one's own appeal (``own_content``, 403).

    The one check of separation of duties: :func:`claim`, :func:`decide` and :func:`decide_appeal`
    call it, so the API, the console, bulk actions and commands all refuse alike. It holds for
    admins and superusers too.
    """
    pk = getattr(user, "pk", None)
    if pk is None:
        return
    if uploader_id is not None and uploader_id == pk:
        raise ModerationError("you cannot decide on your own upload; another moderator must", "own_content", 403)
    if appellant_id is not None and appellant_id == pk:
        raise ModerationError("you cannot decide your own appeal; another moderator must", "own_content", 403)


# ------------------------------------------------------------------ human review
def claim(item_id: Any, user: Any, ttl: float | None = None) -> ReviewItem:
    """Claim for ``user`` (conditional UPDATE: two moderators can never hold one item)."""
    uploader = ReviewItem.objects.filter(pk=item_id).values_list("asset__uploader_id", flat=True).first()
    ensure_not_own(user, uploader_id=uploader)
    now = timezone.now()
    ttl = ttl if ttl is not None else settings.MEDIAINTEL_REVIEW_CLAIM_TTL
    free = Q(state__in=[ReviewState.OPEN, ReviewState.ESCALATED]) | Q(state=ReviewState.CLAIMED,
                                                                      claim_expires_at__lt=now)
    mine = Q(state=ReviewState.CLAIMED, claimed_by=user)
    n = ReviewItem.objects.filter(free | mine, pk=item_id).update(
        state=ReviewState.CLAIMED, claimed_by=user, claim_expires_at=now + timedelta(seconds=ttl), updated_at=now)
    if not n:
        item = ReviewItem.objects.filter(pk=item_id).first()
        if item is None:
            raise ModerationError("no such review item", "not_found", 404)
        raise ModerationError("the item is claimed by another moderator or already decided", "claimed", 409)
    item = ReviewItem.objects.select_related("asset").get(pk=item_id)
    record("review.claimed", target_type="asset", target_id=item.asset_id, actor=Actor.user(user),
           payload={"review_item": str(item.pk), "until": item.claim_expires_at})
    return item


def release(item_id: Any, user: Any) -> None:
    """Give a claimed item back to the queue; only its holder can. Audited (``review.released``) in the
    same transaction, whichever entry point (API, console) calls it."""
    with transaction.atomic():
        item = ReviewItem.objects.select_for_update().filter(
            pk=item_id, state=ReviewState.CLAIMED, claimed_by=user).only("pk", "asset_id").first()
        if item is None:
            raise ModerationError("you do not hold this item", "not_claimed", 409)
        ReviewItem.objects.filter(pk=item.pk).update(state=ReviewState.OPEN, claimed_by=None, claim_expires_at=None,
                                                     updated_at=timezone.now())
        record("review.released", target_type="asset", target_id=item.asset_id, actor=Actor.user(user),
               payload={"review_item": str(item.pk)})


def decide(item_id: Any, user: Any, outcome: str, *, reason_codes: list[str] | None = None,
           note: str = "") -> Decision:
    """A moderator's decision on a claimed item (approve, reject, or escalate to a senior)."""
    if outcome not in Outcome.values:
        raise ModerationError(f"outcome must be one of {', '.join(Outcome.values)}", "invalid", 400)
    codes = list(reason_codes or [])
    unknown = set(codes) - set(Category.objects.filter(code__in=codes).values_list("code", flat=True))
    if unknown:
        raise ModerationError(f"unknown reason code(s): {', '.join(sorted(unknown))}", "invalid", 400)
    if outcome == Outcome.REJECT and not codes:
        raise ModerationError("a rejection needs at least one reason code", "invalid", 400)
    with transaction.atomic():
        item = ReviewItem.objects.select_for_update().select_related("asset", "policy_version__policy").filter(
            pk=item_id).first()
        if item is None:
            raise ModerationError("no such review item", "not_found", 404)
        ensure_not_own(user, uploader_id=item.asset.uploader_id)
        if item.state != ReviewState.CLAIMED or item.claimed_by_id != user.pk or (
                item.claim_expires_at and item.claim_expires_at < timezone.now()):
            raise ModerationError("claim the item before deciding (your claim may have expired)", "not_claimed")
        now = timezone.now()
        item.state = ReviewState.ESCALATED if outcome == Outcome.ESCALATE else ReviewState.DECIDED
        item.decided_at = None if outcome == Outcome.ESCALATE else now
        item.claimed_by, item.claim_expires_at = None, None
        if outcome == Outcome.ESCALATE:
            item.severity = item.severity + 10  # escalated items go to the top of the queue
        item.save()
        ground = human_ground(outcome, codes, note)
        return _decide(item.asset, outcome, reason_codes=codes, moderator=user, pv=item.policy_version,
                       automated_detection=True, automated_decision=False, ground=ground, note=note, item=item,
                       actor=Actor.user(user))


def human_ground(outcome: str, codes: list[str], note: str) -> str:
    """The statement of reasons of a human decision, as the uploader reads it.

    It never names the moderator: who decided is kept in ``Decision.moderator`` and the audit
    trail, which only moderators and admins can read.
    """
    return f"A moderator: {outcome} ({', '.join(codes) or 'no category'})" + (f" — {note}" if note else "")


def expire_claims() -> int:
    """Reopen items whose claim expired (also done lazily by :func:`claim`)."""
    return ReviewItem.objects.filter(state=ReviewState.CLAIMED, claim_expires_at__lt=timezone.now()).update(
        state=ReviewState.OPEN, claimed_by=None, claim_expires_at=None)


# ------------------------------------------------------------------ appeals
def open_appeal(decision: Decision, user: Any, reason: str) -> Appeal:
    if decision.asset.uploader_id != user.pk:
        raise ModerationError("only the uploader can appeal a decision on their asset", "forbidden", 403)
    if not reason.strip():
        raise ModerationError("say why the decision is wrong", "invalid", 400)
    duplicate = ModerationError("this decision already has an open appeal", "duplicate", 409)
    if Appeal.objects.filter(decision=decision, state=AppealState.OPEN).exists():
        raise duplicate
    try:
        with transaction.atomic():
            # the partial unique index ``one_open_appeal_per_decision`` settles concurrent appeals
            a = Appeal.objects.create(decision=decision, appellant=user, reason=reason.strip()[:5000])
            record("appeal.opened", target_type="asset", target_id=decision.asset_id, actor=Actor.user(user),
                   payload={"appeal": str(a.pk), "decision": str(decision.pk)})
            publish("appeal.opened", {"appeal": a.pk, "decision": decision.pk, "asset": decision.asset_id},
                    asset_id=decision.asset_id)
    except IntegrityError:
        raise duplicate from None
    return a


def decide_appeal(appeal_id: Any, moderator: Any, *, upheld: bool, note: str = "") -> Appeal:
    """A different moderator decides; overturning writes a new decision with the opposite outcome."""
    with transaction.atomic():
        a = Appeal.objects.select_for_update(of=("self",)).select_related("decision__asset",
                                                                          "decision__policy_version").get(
            pk=appeal_id)
        if a.state != AppealState.OPEN:
            raise ModerationError("the appeal is already decided", "decided")
        ensure_not_own(moderator, uploader_id=a.decision.asset.uploader_id, appellant_id=a.appellant_id)
        if a.decision.moderator_id == moderator.pk:
            raise ModerationError("an appeal must be decided by a different moderator", "same_moderator", 403)
        a.state, a.upheld, a.decided_by, a.note, a.decided_at = (
            AppealState.DECIDED, upheld, moderator, note, timezone.now())
        a.save()
        d = a.decision
        payload = {"appeal": str(a.pk), "decision": str(d.pk), "asset": str(d.asset_id), "upheld": upheld}
        record("appeal.decided", target_type="asset", target_id=d.asset_id, actor=Actor.user(moderator),
               payload=payload)
        publish("appeal.decided", payload, asset_id=d.asset_id)
        if not upheld:
            flipped = Outcome.APPROVE if d.outcome == Outcome.REJECT else Outcome.REJECT
            _decide(d.asset, flipped, reason_codes=d.reason_codes if flipped == Outcome.REJECT else [],
                    moderator=moderator, pv=d.policy_version, automated_detection=d.automated_detection,
                    automated_decision=False, ground=f"Appeal {a.pk} upheld the uploader: {note}".strip(),
                    note=note, item=None, actor=Actor.user(moderator))
    return a


# ------------------------------------------------------------------ hash banks
def add_asset_to_bank(bank: HashBank, asset: MediaAsset, *, user: Any = None, label: str = "") -> int:
    """Add the asset's PDQ hashes (quality ≥ the bank's minimum) to the bank; returns entries added."""
    from apps.insights.models import PerceptualHash

    added = 0
    for h in PerceptualHash.objects.filter(asset=asset, quality__gte=bank.min_quality):
        _, created = HashBankEntry.objects.get_or_create(
            bank=bank, hash=h.hash, defaults={"quality": h.quality, "source_asset": asset, "label": label,
                                              "added_by": user if getattr(user, "pk", None) else None})
        added += created
    if added:
        record("bank.entries_added", target_type="hash_bank", target_id=bank.name, actor=_actor(user),
               payload={"asset": str(asset.pk), "added": added})
    return added


# ------------------------------------------------------------------ webhooks (outbox)
#: domain event type → the webhook event name subscriptions know it by (its ``data`` is the same)
WEBHOOK_EVENTS = {"decision.made": "moderation.decided", "review.created": "review.created",
                  "appeal.decided": "appeal.decided", "asset.ready": "asset.processed",
                  "asset.failed": "asset.processed"}


def webhook_consumer(envelope: dict[str, Any]) -> None:
    """The webhook sender's subscription to the domain events (``apps.events``): called in the
    publishing transaction, it fans an event out into deliveries under the event's own id."""
    name = WEBHOOK_EVENTS.get(envelope["type"])
    if name:
        emit(name, envelope["data"], event_id=envelope["id"], created_at=envelope["occurred_at"])


def emit(event: str, payload: dict[str, Any], *, event_id: Any = None, created_at: str | None = None) -> int:
    """Write one delivery per subscribed endpoint in the caller's transaction; send after commit."""
    subs = [s for s in WebhookSubscription.objects.filter(enabled=True) if event in s.events]
    if not subs:
        return 0
    event_id = event_id or uuid.uuid4()
    body = {"id": str(event_id), "event": event, "created_at": created_at or rfc3339(timezone.now()),
            "data": payload}
    rows = WebhookDelivery.objects.bulk_create([
        WebhookDelivery(subscription=s, event=event, event_id=event_id, payload=body, next_attempt_at=timezone.now())
        for s in subs])
    ids = [r.pk for r in rows]
    transaction.on_commit(lambda: _send_deliveries(ids))
    return len(rows)


def _send_deliveries(ids: list[int]) -> None:
    from apps.moderation import webhooks

    for pk in ids:
        # a broker hiccup is not lost: the periodic sweep delivers whatever is still pending
        webhooks.send(pk)
