"""Moderation services: automated moderation of an asset, the decision writer, separation of
duties, the webhook outbox.

Human actions (review, appeals, policy versions, banks, webhook subscriptions) are in
``apps.moderation.actions``, each owning its transaction; what is here runs inside a caller's
transaction (the moderate stage's, or an action's) and audits and publishes in it.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.assets.models import MediaAsset, ModerationState
from apps.audit.services import Actor, record
from apps.core.timestamps import rfc3339
from apps.events.services import publish
from apps.insights.models import PerceptualHash
from apps.moderation import policy as engine
from apps.moderation import webhooks
from apps.moderation.models import (
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
from apps.moderation.taxonomy import DEFAULT_RULES, TAXONOMY
from mediacommon.catalog import EngineSpec

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
    """The active version of policy ``name`` (with its policy). The built-in default policy is created
    on first use; any other missing policy, or one without an active version, is ``not_found`` (404)."""
    policy = Policy.objects.select_related("active_version__policy").filter(name=name).first()
    if policy is None and name == "default":
        ensure_defaults()
        policy = Policy.objects.select_related("active_version__policy").get(name=name)
    if policy is None or policy.active_version is None:
        raise ModerationError(f"policy {name!r} does not exist or has no active version", "not_found", 404)
    return policy.active_version


def moderate_stage_spec() -> EngineSpec:
    """The ``moderate`` stage's engine spec: the active default policy version (registered with
    ``apps.pipeline.versions`` so a policy change makes moderation results stale)."""
    pv = active_policy_version()
    return EngineSpec("policy", f"{pv.policy.name}-v{pv.number}")


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
    write_decision(asset, outcome, reason_codes=verdict.reason_codes, moderator=None, pv=pv, automated_detection=True,
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


def write_decision(asset: MediaAsset, outcome: str, *, reason_codes: list[str], moderator: Any,
                   pv: PolicyVersion | None, automated_detection: bool, automated_decision: bool, ground: str,
                   note: str, item: ReviewItem | None, actor: Actor) -> Decision:
    """Store a decision, set the asset's moderation state, audit (``moderation.decided``) and publish it,
    all in the caller's transaction (the moderate stage, a review decision, an appeal)."""
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
            add_asset_hashes(bank, asset, actor=actor, user=moderator)
    return d


# ------------------------------------------------------------------ separation of duties
def ensure_not_own(user: Any, *, uploader_id: Any = None, appellant_id: Any = None) -> None:
    """Refuse a moderation act on one's own upload or one's own appeal (``own_content``, 403).

    The one check of separation of duties: ``apps.moderation.actions`` (claim, decide, decide an
    appeal) calls it, so the API, the console, bulk actions and commands all refuse alike. It holds for
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
def human_ground(outcome: str, codes: list[str], note: str) -> str:
    """The statement of reasons of a human decision, as the uploader reads it.

    It never names the moderator: who decided is kept in ``Decision.moderator`` and the audit
    trail, which only moderators and admins can read.
    """
    return f"A moderator: {outcome} ({', '.join(codes) or 'no category'})" + (f" — {note}" if note else "")


def expire_claims() -> int:
    """Reopen items whose claim expired (also done lazily by claiming)."""
    return ReviewItem.objects.filter(state=ReviewState.CLAIMED, claim_expires_at__lt=timezone.now()).update(
        state=ReviewState.OPEN, claimed_by=None, claim_expires_at=None)


# ------------------------------------------------------------------ hash banks
def add_asset_hashes(bank: HashBank, asset: MediaAsset, *, actor: Actor, user: Any = None, label: str = "") -> int:
    """Add the asset's PDQ hashes (quality ≥ the bank's minimum) to the bank; returns entries added.

    Audited (``bank.entries_added``) in the caller's transaction: a decision's ``bank_on_reject`` and
    :func:`apps.moderation.actions.add_asset_to_bank` call it inside their own.
    """
    added = 0
    for h in PerceptualHash.objects.filter(asset=asset, quality__gte=bank.min_quality):
        _, created = HashBankEntry.objects.get_or_create(
            bank=bank, hash=h.hash, defaults={"quality": h.quality, "source_asset": asset, "label": label,
                                              "added_by": user if getattr(user, "pk", None) else None})
        added += created
    if added:
        record("bank.entries_added", target_type="hash_bank", target_id=bank.name, actor=actor,
               payload={"asset": str(asset.pk), "added": added})
    return added


# ------------------------------------------------------------------ webhooks (outbox)
#: domain event type → the webhook event name subscriptions know it by (its ``data`` is the same)
WEBHOOK_EVENTS = webhooks.DOMAIN_EVENTS


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
    body = webhooks.envelope(event, payload, event_id=event_id, created_at=created_at or rfc3339(timezone.now()))
    rows = WebhookDelivery.objects.bulk_create([
        WebhookDelivery(subscription=s, event=event, event_id=event_id, payload=body, next_attempt_at=timezone.now())
        for s in subs])
    ids = [r.pk for r in rows]
    transaction.on_commit(lambda: _send_deliveries(ids))
    return len(rows)


def _send_deliveries(ids: list[int]) -> None:
    for pk in ids:
        # a broker hiccup is not lost: the periodic sweep delivers whatever is still pending
        webhooks.send(pk)
