"""Audited moderation actions: review, appeals, policy versions, categories, hash banks, webhook subscriptions.

``user`` is the acting user; commands pass an :class:`~apps.audit.services.Actor` naming themselves.

Invariant: each function here owns its transaction and writes its audit record (and its domain
event, where it has one) inside it, so the change and its record commit together or not at all;
work that follows (a retroactive bank scan, a webhook delivery) is sent on commit. Every entry
point calls these — the API (``apps.moderation.api``), the console pages, the ``policy`` and
``bank`` commands and the Django admin — and none of them writes moderation state or an audit
record itself. ``ModerationError`` (``apps.moderation.services``) is a refusal; nothing changed.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from apps.assets.models import MediaAsset
from apps.audit.services import Actor, record
from apps.events.services import publish
from apps.moderation import banks, policy_io, webhooks
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
    WebhookDelivery,
    WebhookSubscription,
)
from apps.moderation.services import (
    ModerationError,
    add_asset_hashes,
    ensure_not_own,
    human_ground,
    write_decision,
)
from mediacommon.text import contains_nul


def _actor(user: Any, component: str) -> Actor:
    """Who acts: the user, an :class:`Actor` a command names itself by, else the system ``component``."""
    if isinstance(user, Actor):
        return user
    return Actor.user(user) if getattr(user, "is_authenticated", False) else Actor.system(component)


def _user(user: Any) -> Any:
    """The user to store as author (``created_by``, ``added_by``): none for a system actor."""
    return user if getattr(user, "pk", None) and not isinstance(user, Actor) else None


# ------------------------------------------------------------------ human review
def claim_review(item_id: Any, user: Any, ttl: float | None = None) -> ReviewItem:
    """Claim for ``user`` (conditional UPDATE: two moderators can never hold one item); claiming an item
    one holds extends the claim. Audited (``review.claimed``)."""
    uploader = ReviewItem.objects.filter(pk=item_id).values_list("asset__uploader_id", flat=True).first()
    ensure_not_own(user, uploader_id=uploader)
    now = timezone.now()
    ttl = ttl if ttl is not None else settings.MEDIAINTEL_REVIEW_CLAIM_TTL
    free = Q(state__in=[ReviewState.OPEN, ReviewState.ESCALATED]) | Q(state=ReviewState.CLAIMED,
                                                                      claim_expires_at__lt=now)
    mine = Q(state=ReviewState.CLAIMED, claimed_by=user)
    with transaction.atomic():
        n = ReviewItem.objects.filter(free | mine, pk=item_id).update(
            state=ReviewState.CLAIMED, claimed_by=user, claim_expires_at=now + timedelta(seconds=ttl),
            updated_at=now)
        if not n:
            if not ReviewItem.objects.filter(pk=item_id).exists():
                raise ModerationError("no such review item", "not_found", 404)
            raise ModerationError("the item is claimed by another moderator or already decided", "claimed", 409)
        item = ReviewItem.objects.select_related("asset").get(pk=item_id)
        record("review.claimed", target_type="asset", target_id=item.asset_id, actor=Actor.user(user),
               payload={"review_item": str(item.pk), "until": item.claim_expires_at})
    return item


def release_review(item_id: Any, user: Any) -> None:
    """Give a claimed item back to the queue; only its holder can. Audited (``review.released``)."""
    with transaction.atomic():
        item = ReviewItem.objects.select_for_update().filter(
            pk=item_id, state=ReviewState.CLAIMED, claimed_by=user).only("pk", "asset_id").first()
        if item is None:
            raise ModerationError("you do not hold this item", "not_claimed", 409)
        ReviewItem.objects.filter(pk=item.pk).update(state=ReviewState.OPEN, claimed_by=None, claim_expires_at=None,
                                                     updated_at=timezone.now())
        record("review.released", target_type="asset", target_id=item.asset_id, actor=Actor.user(user),
               payload={"review_item": str(item.pk)})


def decide_review(item_id: Any, user: Any, outcome: str, *, reason_codes: list[str] | None = None,
                  note: str = "") -> Decision:
    """A moderator's decision on an item they hold: approve, reject (with reason codes) or escalate to a
    senior (the item returns to the queue, on top). Audited (``moderation.decided``) with its events."""
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
        return write_decision(item.asset, outcome, reason_codes=codes, moderator=user, pv=item.policy_version,
                              automated_detection=True, automated_decision=False,
                              ground=human_ground(outcome, codes, note), note=note, item=item,
                              actor=Actor.user(user))


# ------------------------------------------------------------------ appeals
def open_appeal(decision: Decision, user: Any, reason: str) -> Appeal:
    """The uploader contests a decision on their asset (one open appeal per decision). Audited
    (``appeal.opened``) with its event."""
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
    """A different moderator decides; overturning writes a new decision with the opposite outcome.
    Audited (``appeal.decided``, and ``moderation.decided`` when overturned)."""
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
            write_decision(d.asset, flipped, reason_codes=d.reason_codes if flipped == Outcome.REJECT else [],
                           moderator=moderator, pv=d.policy_version, automated_detection=d.automated_detection,
                           automated_decision=False, ground=f"Appeal {a.pk} upheld the uploader: {note}".strip(),
                           note=note, item=None, actor=Actor.user(moderator))
    return a


# ------------------------------------------------------------------ policies and the taxonomy
def new_policy_version(rules: dict[str, Any], *, user: Any, note: str = "", name: str = "default") -> PolicyVersion:
    """Validate and store rules as the policy's next version and make it active. Audited
    (``policy.versioned``)."""
    problems, unknown = engine.validate_rules(rules, Category.objects.values_list("code", flat=True))
    if problems:
        raise ModerationError("; ".join(problems), "invalid_policy", 400)
    if contains_nul(note):
        raise ModerationError("the note may not contain NUL (U+0000) characters", "invalid_policy", 400)
    if unknown:
        raise ModerationError(f"unknown categor{'y' if len(unknown) == 1 else 'ies'} "
                              f"{', '.join(map(repr, unknown))}: add {'it' if len(unknown) == 1 else 'them'} "
                              f"to the taxonomy first", "unknown_category", 409)
    with transaction.atomic():
        policy, _ = Policy.objects.select_for_update().get_or_create(name=name)
        last = policy.versions.order_by("-number").first()
        v = PolicyVersion.objects.create(policy=policy, number=(last.number + 1 if last else 1), rules=rules,
                                         note=note[:300], created_by=_user(user))
        policy.active_version = v
        policy.save(update_fields=["active_version"])
        record("policy.versioned", target_type="policy", target_id=policy.name, actor=_actor(user, "moderation"),
               payload={"version": v.number, "note": note})
    return v


def import_policy(text: str | bytes, *, user: Any = None, name: str | None = None,
                  note: str | None = None) -> tuple[PolicyVersion, bool]:
    """A YAML policy document (``apps.moderation.policy_io``) becomes the policy's next, active version;
    ``(version, created)``. ``created`` is False, and nothing is stored or audited, when the rules equal
    the active version's."""
    parsed = policy_io.parse_yaml(text, name=name)
    with transaction.atomic():
        current = Policy.objects.select_for_update(of=("self",)).select_related("active_version__policy").filter(
            name=parsed.name).first()
        if current and current.active_version and current.active_version.rules == parsed.rules:
            return current.active_version, False
        v = new_policy_version(parsed.rules, user=user, note=note if note is not None else parsed.note,
                               name=parsed.name)
    return v, True


def create_category(*, user: Any, code: str, name: str, severity: int | None = None,
                    description: str = "") -> Category:
    """Add a taxonomy category (never built in; ``severity`` unset: the model's default). Audited
    (``category.created``)."""
    given = {"severity": severity} if severity is not None else {}
    with transaction.atomic():
        cat = Category.objects.create(code=code, name=name, description=description, builtin=False, **given)
        record("category.created", target_type="category", target_id=cat.code, actor=_actor(user, "moderation"),
               payload={"name": cat.name, "severity": cat.severity})
    return cat


# ------------------------------------------------------------------ hash banks
#: a change of these fields (or enabling the bank) can change what matches: the library is scanned again
_RESCAN_FIELDS = {"threshold", "min_quality", "kind"}


def _bank_record(verb: str, bank: HashBank, user: Any, **payload: Any) -> None:
    record(verb, target_type="hash_bank", target_id=bank.name, actor=_actor(user, "hash-banks"), payload=payload)


def create_bank(*, user: Any, name: str, kind: str = HashBank.Kind.BLOCK, **fields: Any) -> HashBank:
    """Create a hash bank (``threshold``, ``min_quality``, ``enabled``, … as the model has them). Audited
    (``bank.created``)."""
    with transaction.atomic():
        bank = HashBank.objects.create(name=name, kind=kind, **fields)
        _bank_record("bank.created", bank, user, kind=bank.kind, threshold=bank.threshold,
                     min_quality=bank.min_quality)
    return bank


def update_bank(bank: HashBank, *, user: Any, **changes: Any) -> HashBank:
    """Change a bank's fields. Audited (``bank.updated`` with the changes); when the bank is (or becomes)
    enabled and what matches may have changed, its entries are scanned again after commit."""
    with transaction.atomic():
        for k, v in changes.items():
            setattr(bank, k, v)
        bank.save()
        _bank_record("bank.updated", bank, user, **changes)
        if bank.enabled and (changes.get("enabled") or _RESCAN_FIELDS & set(changes)):
            transaction.on_commit(lambda: banks.scan_bank(bank))
    return bank


def delete_bank(bank: HashBank, *, user: Any) -> None:
    """Delete a bank and its entries. Audited (``bank.deleted``)."""
    with transaction.atomic():
        _bank_record("bank.deleted", bank, user, kind=bank.kind, entries=bank.entries.count())
        bank.delete()


def add_bank_entry(bank: HashBank, hash_hex: str, *, quality: Any = 100, label: str = "", user: Any = None,
                   scan: bool = True) -> tuple[HashBankEntry, bool]:
    """Add one PDQ hash by hex (idempotent per bank: an existing entry is returned with ``created=False``
    and nothing is audited). Audited (``bank.entry_added``); the library is scanned for it after commit."""
    bits, q = banks.hex_to_bits(hash_hex), banks.parse_quality(quality)
    with transaction.atomic():
        entry, created = HashBankEntry.objects.get_or_create(
            bank=bank, hash=bits, defaults={"quality": q, "label": (label or "")[:200], "added_by": _user(user)})
        if created:
            _bank_record("bank.entry_added", bank, user, entry=entry.pk, hash=banks.bits_to_hex(bits), quality=q,
                         label=entry.label)
            if scan:
                banks.schedule_scan([entry.pk])
    return entry, created


def update_bank_entry(entry: HashBankEntry, *, user: Any = None, enabled: bool | None = None,
                      label: str | None = None) -> HashBankEntry:
    """Enable or disable an entry (``bank.entry_enabled`` / ``bank.entry_disabled``; enabling scans the
    library after commit) and/or relabel it (``bank.entry_relabelled``). Only a change is audited."""
    with transaction.atomic():
        if enabled is not None and HashBankEntry.objects.filter(pk=entry.pk).exclude(enabled=enabled).update(
                enabled=enabled):
            _bank_record("bank.entry_enabled" if enabled else "bank.entry_disabled", entry.bank, user,
                         entry=entry.pk, hash=banks.bits_to_hex(entry.hash))
            if enabled:
                banks.schedule_scan([entry.pk])
        if enabled is not None:
            entry.enabled = enabled
        if label is not None and label != entry.label:
            HashBankEntry.objects.filter(pk=entry.pk).update(label=label[:200])
            entry.label = label[:200]
            _bank_record("bank.entry_relabelled", entry.bank, user, entry=entry.pk, label=entry.label)
    return entry


def delete_bank_entry(entry: HashBankEntry, *, user: Any) -> None:
    """Remove one entry. Audited (``bank.entry_deleted``)."""
    with transaction.atomic():
        _bank_record("bank.entry_deleted", entry.bank, user, entry=entry.pk, hash=banks.bits_to_hex(entry.hash))
        entry.delete()


def add_asset_to_bank(bank: HashBank, asset: MediaAsset, *, user: Any = None, label: str = "") -> list[int]:
    """Add the asset's PDQ hashes (quality ≥ the bank's minimum); new entry ids. Audited
    (``bank.entries_added``, when any was added); the library is scanned for them after commit."""
    with transaction.atomic():
        before = set(HashBankEntry.objects.filter(bank=bank).values_list("pk", flat=True))
        add_asset_hashes(bank, asset, actor=_actor(user, "hash-banks"), user=_user(user), label=label)
        new = sorted(set(HashBankEntry.objects.filter(bank=bank).values_list("pk", flat=True)) - before)
        banks.schedule_scan(new)
    return new


def import_bank_csv(bank: HashBank, text: Any, *, user: Any = None, scan: bool = True,
                    max_errors: int = 100) -> banks.ImportResult:
    """Import ``hash_hex,quality,label`` rows (``banks.parse_csv``: malformed rows are reported, not
    fatal). Audited (``bank.imported``); the library is scanned for the new entries after commit."""
    rows, result = banks.parse_csv(text, max_errors=max_errors)
    items = list(rows.items())
    with transaction.atomic():
        for i in range(0, len(items), 1000):
            chunk = dict(items[i:i + 1000])
            existing = set(HashBankEntry.objects.filter(bank=bank, hash__in=list(chunk)).values_list("hash", flat=True))
            new = [HashBankEntry(bank=bank, hash=bits, quality=q, label=label, added_by=_user(user))
                   for bits, (q, label) in chunk.items() if bits not in existing]
            HashBankEntry.objects.bulk_create(new, ignore_conflicts=True)
            result.entry_ids += HashBankEntry.objects.filter(bank=bank, hash__in=[e.hash for e in new]).values_list(
                "pk", flat=True)
        result.entry_ids.sort()
        result.added, result.existing = len(result.entry_ids), len(rows) - len(result.entry_ids)
        _bank_record("bank.imported", bank, user, added=result.added, existing=result.existing,
                     errors=len(result.errors))
        if scan:
            banks.schedule_scan(result.entry_ids)
    return result


def request_bank_scan(bank: HashBank, *, user: Any = None) -> int:
    """Scan the library for every enabled entry of the bank (sent after commit); entries to scan.
    Audited (``bank.scan_requested``)."""
    with transaction.atomic():
        n = bank.entries.filter(enabled=True).count()
        _bank_record("bank.scan_requested", bank, user, entries=n)
        transaction.on_commit(lambda: banks.scan_bank(bank))
    return n


# ------------------------------------------------------------------ webhook subscriptions
def create_webhook(user: Any, *, url: str, events: list[str], enabled: bool = True,
                   secret: str = "") -> WebhookSubscription:
    """Add a receiver (URL checked: ``outbound.TargetError``). The secret is generated when not given.
    Audited (``webhook.created``)."""
    webhooks.check_url(url)
    with transaction.atomic():
        sub = WebhookSubscription.objects.create(url=url, events=sorted(set(events)), enabled=enabled,
                                                 secret=secret or webhooks.new_secret())
        record("webhook.created", target_type="webhook", target_id=sub.pk, actor=Actor.user(user),
               payload={"url": sub.url, "events": sub.events})
    return sub


def update_webhook(sub: WebhookSubscription, user: Any, **changes: Any) -> WebhookSubscription:
    """Change ``url``/``events``/``enabled``/``secret`` (a new URL is checked). Audited
    (``webhook.updated``)."""
    unknown = set(changes) - {"url", "events", "enabled", "secret"}
    if unknown:
        raise ValueError(f"cannot change {', '.join(sorted(unknown))}")
    if "url" in changes:
        webhooks.check_url(changes["url"])
    if "events" in changes:
        changes["events"] = sorted(set(changes["events"]))
    with transaction.atomic():
        for k, v in changes.items():
            setattr(sub, k, v)
        sub.save(update_fields=list(changes) or None)
        record("webhook.updated", target_type="webhook", target_id=sub.pk, actor=Actor.user(user),
               payload={"url": sub.url, "changed": sorted(changes), "events": sub.events, "enabled": sub.enabled})
    return sub


def delete_webhook(sub: WebhookSubscription, user: Any) -> None:
    """Remove a receiver and its delivery log. Audited (``webhook.deleted``)."""
    with transaction.atomic():
        record("webhook.deleted", target_type="webhook", target_id=sub.pk, actor=Actor.user(user),
               payload={"url": sub.url})
        sub.delete()


def redeliver_webhook(delivery: WebhookDelivery, user: Any) -> WebhookDelivery:
    """Send a delivery again with a fresh attempt budget (sent after commit). Audited
    (``webhook.redelivered``, with the delivery's state before)."""
    before = {"status": delivery.status, "attempts": delivery.attempts,
              "last_status_code": delivery.last_status_code, "last_error_kind": delivery.last_error_kind}
    with transaction.atomic():
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=WebhookDelivery.Status.PENDING, attempts=0, next_attempt_at=timezone.now(), last_error="",
            last_error_kind="", delivered_at=None)
        record("webhook.redelivered", target_type="webhook_delivery", target_id=delivery.pk,
               actor=Actor.user(user), payload={"event": delivery.event, "event_id": str(delivery.event_id),
                                                "before": before})
        pk = delivery.pk
        delivery.refresh_from_db()  # as queued: once committed, a worker may deliver it at any moment
        transaction.on_commit(lambda: webhooks.send(pk))
    return delivery
