"""Moderation: taxonomy, versioned policies, signals, review items, decisions, appeals, hash banks,
webhooks. Services in ``apps.moderation.services``; the policy engine in ``apps.moderation.policy``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from pgvector.django import BitField

from apps.assets.models import MediaAsset
from apps.core.models import UUIDModel


class Category(models.Model):
    """A two-level taxonomy entry such as ``sexual/explicit_nudity``; admins may add their own."""

    code = models.CharField(max_length=64, primary_key=True)
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    severity = models.PositiveSmallIntegerField(default=3, help_text="1 (mild) … 5 (severe)")
    builtin = models.BooleanField(default=False)

    class Meta:
        ordering = ["code"]
        verbose_name_plural = "categories"

    def __str__(self) -> str:
        return self.code

    @property
    def group(self) -> str:
        return self.code.split("/", 1)[0]


class Policy(models.Model):
    """A named policy; its rules live in immutable versions."""

    name = models.CharField(max_length=100, unique=True)
    active_version = models.ForeignKey("PolicyVersion", null=True, blank=True, on_delete=models.PROTECT,
                                       related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "policies"

    def __str__(self) -> str:
        return self.name


class PolicyVersion(models.Model):
    """Immutable rules: per category ``review``/``block`` thresholds and per-source weights.

    ``rules = {"categories": {code: {"review": 0.5, "block": 0.9, "weights": {source: w}}},
               "bank_on_reject": "bank-name" | null}``
    """

    policy = models.ForeignKey(Policy, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    rules = models.JSONField()
    note = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["policy", "-number"]
        constraints = [models.UniqueConstraint(fields=["policy", "number"], name="policy_version_number")]

    def __str__(self) -> str:
        return f"{self.policy.name} v{self.number}"

    @property
    def label(self) -> str:
        return f"{self.policy.name}@v{self.number}"


class Signal(models.Model):
    """Evidence that an asset may break a rule: category, score, source, and where."""

    id = models.BigAutoField(primary_key=True)
    asset = models.ForeignKey(MediaAsset, on_delete=models.CASCADE, related_name="signals")
    category = models.ForeignKey(Category, on_delete=models.PROTECT)
    score = models.FloatField()
    source = models.CharField(max_length=16, help_text="nsfw | nudity | objects | text | hash")
    engine = models.CharField(max_length=64)
    engine_version = models.CharField(max_length=128)
    start = models.FloatField(null=True, blank=True)
    end = models.FloatField(null=True, blank=True)
    keyframe_index = models.IntegerField(null=True, blank=True)
    evidence = models.JSONField(default=dict, help_text="box, text span, matched hash entry, …")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["asset", "-score"]
        indexes = [models.Index(fields=["asset", "category"])]

    def __str__(self) -> str:
        return f"{self.category_id} {self.score:.2f} ({self.source})"


class ReviewState(models.TextChoices):
    OPEN = "open"
    CLAIMED = "claimed"
    DECIDED = "decided"
    ESCALATED = "escalated"


class ReviewItem(UUIDModel):
    """An asset waiting for a human; at most one undecided item per asset."""

    asset = models.ForeignKey(MediaAsset, on_delete=models.CASCADE, related_name="review_items")
    state = models.CharField(max_length=10, choices=ReviewState.choices, default=ReviewState.OPEN, db_index=True)
    severity = models.FloatField(help_text="max over categories of severity × score")
    categories = models.JSONField(default=list)
    policy_version = models.ForeignKey(PolicyVersion, on_delete=models.PROTECT)
    claimed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="claimed_reviews")
    claim_expires_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-severity", "created_at"]
        constraints = [models.UniqueConstraint(fields=["asset"], condition=models.Q(state__in=["open", "claimed",
                                                                                                  "escalated"]),
                                               name="one_pending_review_per_asset")]

    def __str__(self) -> str:
        return f"review {self.asset_id} [{self.state}]"


class Outcome(models.TextChoices):
    APPROVE = "approve"
    REJECT = "reject"
    ESCALATE = "escalate"


class Decision(UUIDModel):
    """An automated or human decision with its statement of reasons."""

    asset = models.ForeignKey(MediaAsset, on_delete=models.CASCADE, related_name="decisions")
    review_item = models.ForeignKey(ReviewItem, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="decisions")
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    reason_codes = models.JSONField(default=list, help_text="taxonomy codes")
    note = models.TextField(blank=True)
    moderator = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="moderation_decisions")
    policy_version = models.ForeignKey(PolicyVersion, null=True, blank=True, on_delete=models.PROTECT)
    automated_detection = models.BooleanField(help_text="was the content found by automated means")
    automated_decision = models.BooleanField(help_text="was the decision taken without a human")
    ground = models.TextField(help_text="the rule or reason the decision rests on")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.outcome} {self.asset_id}"


class AppealState(models.TextChoices):
    OPEN = "open"
    DECIDED = "decided"


class Appeal(UUIDModel):
    """The uploader contests a decision; a different moderator decides. At most one open appeal per decision."""

    decision = models.ForeignKey(Decision, on_delete=models.CASCADE, related_name="appeals")
    appellant = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="appeals")
    reason = models.TextField()
    state = models.CharField(max_length=10, choices=AppealState.choices, default=AppealState.OPEN, db_index=True)
    upheld = models.BooleanField(null=True, help_text="True: the decision stands; False: overturned")
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="decided_appeals")
    note = models.TextField(blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [models.UniqueConstraint(fields=["decision"], condition=models.Q(state="open"),
                                               name="one_open_appeal_per_decision")]

    def __str__(self) -> str:
        return f"appeal of {self.decision_id} [{self.state}]"


class HashBank(models.Model):
    """A bank of PDQ hashes: ``block`` banks make matches signals; ``allow`` banks suppress them."""

    class Kind(models.TextChoices):
        BLOCK = "block"
        ALLOW = "allow"

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.BLOCK)
    enabled = models.BooleanField(default=True)
    threshold = models.PositiveSmallIntegerField(default=31, help_text="max Hamming distance for a match")
    min_quality = models.PositiveSmallIntegerField(default=50)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"


class HashBankEntry(models.Model):
    id = models.BigAutoField(primary_key=True)
    bank = models.ForeignKey(HashBank, on_delete=models.CASCADE, related_name="entries")
    hash = BitField(length=256)
    quality = models.PositiveSmallIntegerField(default=100)
    enabled = models.BooleanField(default=True)
    label = models.CharField(max_length=200, blank=True)
    source_asset = models.ForeignKey(MediaAsset, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="bank_entries")
    added_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        # no index on ``hash``: matching runs on the worker's in-memory index (apps/moderation/bankmatch.py)
        constraints = [models.UniqueConstraint(fields=["bank", "hash"], name="bank_entry_unique_hash")]

    def __str__(self) -> str:
        return f"{self.bank.name}:{int(self.hash, 2):064x}"[:80]


class WebhookSubscription(models.Model):
    EVENTS = ("asset.processed", "moderation.decided", "review.created", "appeal.decided")

    url = models.URLField(max_length=500)
    secret = models.CharField(max_length=200)
    events = models.JSONField(default=list)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.url


class WebhookDelivery(models.Model):
    """The outbox: written in the transaction of the event, delivered by a task with retries.

    ``attempts`` counts every send begun (taken when the send starts, so one that never finishes
    counts too). Of the last attempt only our own account is kept: status code, duration, an
    error kind and a short message of ours — never what the receiver wrote.
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        FAILED = "failed"

    class ErrorKind(models.TextChoices):
        HTTP_STATUS = "http_status", "non-2xx answer"
        REDIRECT = "redirect", "redirect (not followed)"
        TIMEOUT = "timeout", "no answer by the deadline"
        CONNECT = "connect", "connection failed"
        TLS = "tls", "TLS failed"
        PROTOCOL = "protocol", "not a valid HTTP answer"
        DNS = "dns", "name does not resolve"
        REFUSED_TARGET = "refused_target", "target address refused"
        UNFINISHED = "unfinished", "last attempt never finished"
        DISABLED = "disabled", "subscription disabled"

    id = models.BigAutoField(primary_key=True)
    subscription = models.ForeignKey(WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=40)
    event_id = models.UUIDField()
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_status_code = models.IntegerField(null=True, blank=True)
    last_error_kind = models.CharField(max_length=20, choices=ErrorKind.choices, blank=True)
    last_error = models.CharField(max_length=200, blank=True)
    last_duration_ms = models.PositiveIntegerField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.event} → {self.subscription_id} [{self.status}]"
