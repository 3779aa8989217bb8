"""Django admin for moderation. State that services audit (decisions, review items, appeals, policy
versions, webhook subscriptions and deliveries) is read-only here: change it through the API or the
console."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from apps.core.admin import ReadOnlyAdmin
from apps.moderation.models import (
    Appeal,
    Category,
    Decision,
    HashBank,
    HashBankEntry,
    Policy,
    PolicyVersion,
    ReviewItem,
    Signal,
    WebhookDelivery,
    WebhookSubscription,
)


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "severity", "builtin"]
    list_filter = ["builtin", "severity"]
    search_fields = ["code", "name"]
    readonly_fields = ["builtin"]

    def has_delete_permission(self, request: HttpRequest, obj: Category | None = None) -> bool:
        return obj is None or not obj.builtin


@admin.register(Policy)
class PolicyAdmin(ReadOnlyAdmin):
    list_display = ["name", "active_version", "created_at"]


@admin.register(PolicyVersion)
class PolicyVersionAdmin(ReadOnlyAdmin):
    """Versions are immutable; "add" stores a new one through the service (validated, activated, audited)."""

    list_display = ["policy", "number", "note", "created_by", "created_at"]
    list_filter = ["policy"]
    fields = ["policy", "rules", "note"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser or request.user.groups.filter(name="admin").exists()

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return True

    def save_model(self, request: HttpRequest, obj: PolicyVersion, form: Any, change: bool) -> None:
        from django.core.exceptions import ValidationError

        from apps.moderation.services import ModerationError, new_policy_version

        try:
            saved = new_policy_version(obj.rules, user=request.user, note=obj.note, name=obj.policy.name)
        except ModerationError as e:
            raise ValidationError(str(e)) from e
        obj.pk, obj.number = saved.pk, saved.number


@admin.register(Signal)
class SignalAdmin(ReadOnlyAdmin):
    list_display = ["asset", "category", "score", "source", "engine_version", "created_at"]
    list_filter = ["source", "category"]
    raw_id_fields = ["asset"]


@admin.register(ReviewItem)
class ReviewItemAdmin(ReadOnlyAdmin):
    list_display = ["id", "asset", "state", "severity", "claimed_by", "created_at"]
    list_filter = ["state"]
    raw_id_fields = ["asset"]


@admin.register(Decision)
class DecisionAdmin(ReadOnlyAdmin):
    list_display = ["id", "asset", "outcome", "automated_decision", "moderator", "created_at"]
    list_filter = ["outcome", "automated_decision"]
    raw_id_fields = ["asset"]


@admin.register(Appeal)
class AppealAdmin(ReadOnlyAdmin):
    list_display = ["id", "decision", "appellant", "state", "upheld", "decided_by", "created_at"]
    list_filter = ["state", "upheld"]


@admin.register(HashBank)
class HashBankAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "enabled", "threshold", "min_quality", "created_at"]
    list_filter = ["kind", "enabled"]


@admin.register(HashBankEntry)
class HashBankEntryAdmin(ReadOnlyAdmin):
    list_display = ["id", "bank", "hex", "quality", "enabled", "label", "created_at"]
    list_filter = ["bank", "enabled"]
    search_fields = ["label"]
    exclude = ["hash"]
    readonly_fields = ["hex"]

    @admin.display(description="PDQ hash")
    def hex(self, obj: HashBankEntry) -> str:
        return f"{int(obj.hash, 2):064x}"


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(ReadOnlyAdmin):
    """Read-only: subscriptions are changed through the API, whose actions check the URL (no
    internal targets) and audit the change."""

    list_display = ["id", "url", "events", "enabled", "created_at"]
    list_filter = ["enabled"]
    exclude = ["secret"]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    """The delivery log; ``failed`` ones have spent their attempts (redeliver through the API)."""

    list_display = ["id", "event", "subscription", "status", "attempts", "last_status_code", "last_error_kind",
                    "last_duration_ms", "next_attempt_at", "created_at"]
    list_filter = ["status", "last_error_kind", "event"]
