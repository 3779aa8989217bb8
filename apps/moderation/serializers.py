"""API representations of moderation: review items, decisions, appeals, policies, banks, webhooks."""

from __future__ import annotations

import re
from typing import Any

from django.db import models as dj
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.assets.serializers import AssetSerializer
from apps.core.fields import StoredJSONField, StrictBooleanField, StrictCharField
from apps.moderation import outbound, webhooks
from apps.moderation.models import (
    Appeal,
    Category,
    Decision,
    HashBank,
    HashBankEntry,
    Outcome,
    Policy,
    PolicyVersion,
    ReviewItem,
    Signal,
    WebhookDelivery,
    WebhookSubscription,
)
from apps.moderation.policy import RULES_SCHEMA

CATEGORY_CODE = re.compile(r"^[a-z0-9_]+(/[a-z0-9_]+)?$")


def _username(user: Any) -> str | None:
    return user.get_username() if user is not None else None


# ------------------------------------------------------------------ taxonomy
class CategorySerializer(serializers.ModelSerializer):
    group = serializers.CharField(read_only=True)

    class Meta:
        model = Category
        fields = ["code", "name", "description", "severity", "builtin", "group"]
        read_only_fields = ["builtin", "group"]
        extra_kwargs = {"code": {"validators": []}, "severity": {"min_value": 1, "max_value": 5}}

    def validate_code(self, value: str) -> str:
        if not CATEGORY_CODE.match(value):
            raise serializers.ValidationError("a code is `group` or `group/name` in lower case, digits and _")
        if Category.objects.filter(code=value).exists():
            raise serializers.ValidationError("this category exists", code="unique")
        return value


# ------------------------------------------------------------------ signals, review items
class SignalSerializer(serializers.ModelSerializer):
    class Meta:
        model = Signal
        fields = ["id", "category", "score", "source", "engine", "engine_version", "start", "end", "keyframe_index",
                  "evidence", "created_at"]
        read_only_fields = fields


class ReviewItemSerializer(serializers.ModelSerializer):
    claimed_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    policy = serializers.CharField(source="policy_version.label", read_only=True)
    asset_kind = serializers.CharField(source="asset.kind", read_only=True)
    asset_title = serializers.CharField(source="asset.title", read_only=True)

    class Meta:
        model = ReviewItem
        fields = ["id", "asset", "asset_kind", "asset_title", "state", "severity", "categories", "policy",
                  "claimed_by", "claim_expires_at", "decided_at", "created_at", "updated_at"]
        read_only_fields = fields


class DecisionBriefSerializer(serializers.ModelSerializer):
    moderator = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    policy = serializers.SerializerMethodField()

    class Meta:
        model = Decision
        fields = ["id", "outcome", "reason_codes", "note", "moderator", "policy", "automated_detection",
                  "automated_decision", "ground", "created_at"]
        read_only_fields = fields

    def get_policy(self, obj: Decision) -> str | None:
        return obj.policy_version.label if obj.policy_version_id else None


class ReviewItemDetailSerializer(ReviewItemSerializer):
    asset = AssetSerializer(read_only=True)
    signals = serializers.SerializerMethodField()
    decisions = serializers.SerializerMethodField()

    class Meta(ReviewItemSerializer.Meta):
        fields = [*ReviewItemSerializer.Meta.fields, "signals", "decisions"]
        read_only_fields = fields

    @extend_schema_field(SignalSerializer(many=True))
    def get_signals(self, obj: ReviewItem) -> list[dict[str, Any]]:
        return SignalSerializer(Signal.objects.filter(asset_id=obj.asset_id).order_by("-score", "id"), many=True).data

    @extend_schema_field(DecisionBriefSerializer(many=True))
    def get_decisions(self, obj: ReviewItem) -> list[dict[str, Any]]:
        qs = Decision.objects.filter(asset_id=obj.asset_id).select_related("moderator", "policy_version__policy")
        return DecisionBriefSerializer(qs, many=True).data


class DecideSerializer(serializers.Serializer):
    outcome = serializers.ChoiceField(choices=Outcome.choices)
    reason_codes = serializers.ListField(child=serializers.CharField(max_length=64), required=False, default=list,
                                         max_length=20)
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)


# ------------------------------------------------------------------ decisions, appeals
class AppealBriefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Appeal
        fields = ["id", "state", "upheld", "decided_at", "created_at"]
        read_only_fields = fields


class DecisionSerializer(DecisionBriefSerializer):
    """A statement of reasons. Uploaders see neither the moderator nor the review item."""

    appeals = AppealBriefSerializer(many=True, read_only=True)

    class Meta(DecisionBriefSerializer.Meta):
        fields = ["id", "asset", "review_item", *DecisionBriefSerializer.Meta.fields[1:], "appeals"]
        read_only_fields = fields

    def to_representation(self, instance: Decision) -> dict[str, Any]:
        data = super().to_representation(instance)
        if not self.context.get("moderator_view", False):
            data["moderator"] = None
            data["review_item"] = None
        return data


class AppealSerializer(serializers.ModelSerializer):
    appellant = serializers.SlugRelatedField(slug_field="username", read_only=True)
    decided_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    asset = serializers.UUIDField(source="decision.asset_id", read_only=True)

    class Meta:
        model = Appeal
        fields = ["id", "decision", "asset", "appellant", "reason", "state", "upheld", "decided_by", "note",
                  "decided_at", "created_at"]
        read_only_fields = fields

    def to_representation(self, instance: Appeal) -> dict[str, Any]:
        data = super().to_representation(instance)
        if not self.context.get("moderator_view", False):
            data["decided_by"] = None
        return data


class AppealCreateSerializer(serializers.Serializer):
    decision = serializers.UUIDField()
    reason = serializers.CharField(max_length=5000)


class AppealDecideSerializer(serializers.Serializer):
    upheld = StrictBooleanField(help_text="true: the decision stands; false: it is overturned")
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)


# ------------------------------------------------------------------ policies
@extend_schema_field(RULES_SCHEMA)
class RulesField(StoredJSONField):
    """A policy's rules document (documented by :data:`apps.moderation.policy.RULES_SCHEMA`; checked
    by :func:`apps.moderation.policy.validate_rules` when a version is created)."""


class PolicyVersionSerializer(serializers.ModelSerializer):
    rules = RulesField(read_only=True)
    policy = serializers.CharField(source="policy.name", read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True,
                                              help_text="Who created it; null for the built-in default")
    active = serializers.SerializerMethodField()

    class Meta:
        model = PolicyVersion
        fields = ["id", "policy", "number", "label", "rules", "note", "created_by", "created_at", "active"]
        read_only_fields = fields

    def get_active(self, obj: PolicyVersion) -> bool:
        return obj.policy.active_version_id == obj.pk


class PolicySerializer(serializers.ModelSerializer):
    active_version = PolicyVersionSerializer(read_only=True)
    versions = serializers.IntegerField(source="versions.count", read_only=True)

    class Meta:
        model = Policy
        fields = ["name", "active_version", "versions", "created_at"]
        read_only_fields = fields


class PolicyVersionCreateSerializer(serializers.Serializer):
    rules = RulesField()
    note = StrictCharField(required=False, allow_blank=True, default="", max_length=300)

    def validate_rules(self, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise serializers.ValidationError("rules must be a JSON object")
        return value


@extend_schema_field({"type": "string", "minLength": 1, "contentMediaType": "application/yaml"})
class YamlTextField(StrictCharField):
    """A YAML document carried as a JSON string."""


class PolicyImportSerializer(serializers.Serializer):
    yaml = YamlTextField(help_text="The YAML document (or send it as the raw body, Content-Type "
                                   "application/yaml).", trim_whitespace=False)
    note = serializers.CharField(required=False, allow_blank=True, max_length=300)


class PolicyImportResultSerializer(serializers.Serializer):
    created = serializers.BooleanField()
    version = PolicyVersionSerializer()


# ------------------------------------------------------------------ hash banks
class HashBankSerializer(serializers.ModelSerializer):
    serializer_field_mapping = {**serializers.ModelSerializer.serializer_field_mapping, dj.CharField: StrictCharField}
    enabled = StrictBooleanField(required=False)
    entries = serializers.IntegerField(read_only=True, source="entry_count", default=0)
    enabled_entries = serializers.IntegerField(read_only=True, source="enabled_count", default=0)

    class Meta:
        model = HashBank
        fields = ["id", "name", "kind", "enabled", "threshold", "min_quality", "created_at", "entries",
                  "enabled_entries"]
        read_only_fields = ["id", "created_at", "entries", "enabled_entries"]
        extra_kwargs = {"threshold": {"min_value": 0, "max_value": 128},
                        "min_quality": {"min_value": 0, "max_value": 100}}


class HashBankEntrySerializer(serializers.ModelSerializer):
    hash_hex = serializers.SerializerMethodField()
    bank_name = serializers.CharField(source="bank.name", read_only=True)
    added_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = HashBankEntry
        fields = ["id", "bank", "bank_name", "hash_hex", "quality", "enabled", "label", "source_asset", "added_by",
                  "created_at"]
        read_only_fields = fields

    def get_hash_hex(self, obj: HashBankEntry) -> str:
        return f"{int(obj.hash, 2):064x}"


@extend_schema_field({"type": "string", "pattern": "^(0[xX])?[0-9a-fA-F]{64}$"})
class HashHexField(serializers.CharField):
    """64 hex digits of a PDQ hash, optionally ``0x``-prefixed (checked by ``banks.hex_to_bits``:
    a malformed one is a 400 ``invalid_hash``)."""


class HashBankEntryCreateSerializer(serializers.Serializer):
    hash_hex = HashHexField(help_text="64 hex digits of a PDQ hash", max_length=66)
    quality = serializers.IntegerField(min_value=0, max_value=100, default=100)
    label = StrictCharField(required=False, allow_blank=True, default="", max_length=200)


class HashBankEntryUpdateSerializer(serializers.Serializer):
    enabled = StrictBooleanField(required=False)
    label = StrictCharField(required=False, allow_blank=True, max_length=200)


class BankAddAssetSerializer(serializers.Serializer):
    asset = serializers.UUIDField()
    label = StrictCharField(required=False, allow_blank=True, default="", max_length=200)


class BankAddAssetResultSerializer(serializers.Serializer):
    added = serializers.IntegerField()
    entries = HashBankEntrySerializer(many=True)


class BankImportSerializer(serializers.Serializer):
    """The form of a bank import: ``file``, ``csv`` or both (documented as ``anyOf``, see
    :class:`BankImportSchema`; both: the file's rows, then the text's); neither is a 400 naming them."""

    file = serializers.FileField(required=False, allow_empty_file=True,
                                 help_text="CSV `hash_hex,quality,label` (multipart; empty: nothing to import); or "
                                           "send the CSV as the raw body with Content-Type text/csv")
    csv = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False,
                                help_text="The CSV text (empty: nothing to import)")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("file") is None and attrs.get("csv") is None:
            problem = "send a CSV file, `csv` text, or a text/csv body"
            raise serializers.ValidationError({"file": [problem], "csv": [problem]})
        return attrs


class BankImportSchema(OpenApiSerializerExtension):
    """The form's component states its rule: ``anyOf`` (``required: [file]`` | ``required: [csv]``)."""

    target_class = BankImportSerializer

    def map_serializer(self, auto_schema: Any, direction: Any) -> Any:
        schema = auto_schema._map_basic_serializer(self.target, direction)
        schema["anyOf"] = [{"required": ["file"]}, {"required": ["csv"]}]
        return schema


class BankImportJsonSerializer(serializers.Serializer):
    """The JSON form of a bank import: a JSON body cannot carry a file, only the CSV text."""

    csv = StrictCharField(trim_whitespace=False, allow_blank=True, help_text="The CSV text")


class BankImportResultSerializer(serializers.Serializer):
    added = serializers.IntegerField()
    existing = serializers.IntegerField()
    errors = serializers.ListField(child=serializers.CharField())


# ------------------------------------------------------------------ webhooks
@extend_schema_field({"type": "string", "pattern": "^[^\\u0000]*$"})
class NoNulCharField(serializers.CharField):
    """Text without NUL characters (PostgreSQL cannot store one; DRF refuses it, 400), and the
    schema says so with a ``pattern``."""


class WebhookSubscriptionSerializer(serializers.ModelSerializer):
    enabled = StrictBooleanField(required=False)
    events = serializers.ListField(child=serializers.ChoiceField(choices=WebhookSubscription.EVENTS), min_length=1,
                                   help_text=f"Any of {', '.join(WebhookSubscription.EVENTS)}")
    secret = NoNulCharField(write_only=True, required=False, min_length=16, max_length=200,
                                   help_text="HMAC secret; generated when omitted and shown once in the response "
                                             "to the create request")

    class Meta:
        model = WebhookSubscription
        fields = ["id", "url", "events", "enabled", "secret", "created_at"]
        read_only_fields = ["id", "created_at"]

    def validate_url(self, value: str) -> str:
        """http(s) only, and no internal target (checked again before every send)."""
        try:
            return webhooks.check_url(value)
        except outbound.TargetError as e:
            raise serializers.ValidationError(str(e), code=e.kind) from None

    def validate_events(self, value: list[str]) -> list[str]:
        return sorted(set(value))


class WebhookSubscriptionCreatedSerializer(WebhookSubscriptionSerializer):
    secret = serializers.CharField(read_only=True, help_text="Shown only in this response")

    class Meta(WebhookSubscriptionSerializer.Meta):
        fields = WebhookSubscriptionSerializer.Meta.fields


class WebhookDeliverySerializer(serializers.ModelSerializer):
    url = serializers.CharField(source="subscription.url", read_only=True)
    last_error_kind = serializers.ChoiceField(choices=WebhookDelivery.ErrorKind.choices, allow_blank=True,
                                              read_only=True, help_text="Why the last attempt failed; "
                                              "empty before the first failure and after a success")

    class Meta:
        model = WebhookDelivery
        fields = ["id", "subscription", "url", "event", "event_id", "payload", "status", "attempts",
                  "next_attempt_at", "last_attempt_at", "last_status_code", "last_error_kind", "last_error",
                  "last_duration_ms", "delivered_at", "created_at"]
        read_only_fields = fields


class CountsSerializer(serializers.Serializer):
    by_state = serializers.DictField(child=serializers.IntegerField())
    by_category = serializers.DictField(child=serializers.IntegerField(),
                                        help_text="pending items per category")

