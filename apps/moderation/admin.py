"""Django admin for moderation. Audited state is changed here only through the actions of
``apps.moderation.actions`` (adding a category, a policy version; creating, changing and deleting a
hash bank), so the change and its audit record commit together; the rest (decisions, review items,
appeals, bank entries, webhook subscriptions and deliveries) is read-only: change it through the API
or the console."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
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


def _is_admin(request: HttpRequest) -> bool:
    return request.user.is_superuser or request.user.groups.filter(name="admin").exists()


@admin.register(Category)
class CategoryAdmin(ReadOnlyAdmin):
    """The taxonomy: "add" creates a category through the audited action; categories are not edited
    or deleted (decisions and policies name them)."""

    list_display = ["code", "name", "severity", "builtin"]
    list_filter = ["builtin", "severity"]
    search_fields = ["code", "name"]
    fields = ["code", "name", "severity", "description"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return _is_admin(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return True

    def save_model(self, request: HttpRequest, obj: Category, form: Any, change: bool) -> None:
        from apps.moderation.actions import create_category

        saved = create_category(user=request.user, code=obj.code, name=obj.name, severity=obj.severity,
                                description=obj.description)
        obj.pk = saved.pk


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
        return _is_admin(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return True

    def save_model(self, request: HttpRequest, obj: PolicyVersion, form: Any, change: bool) -> None:
        from django.core.exceptions import ValidationError

        from apps.moderation.actions import new_policy_version
        from apps.moderation.services import ModerationError

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
    """Create, change and delete banks through the audited actions (the bulk delete too)."""

    list_display = ["name", "kind", "enabled", "threshold", "min_quality", "created_at"]
    list_filter = ["kind", "enabled"]

    def save_model(self, request: HttpRequest, obj: HashBank, form: Any, change: bool) -> None:
        from apps.moderation import actions

        fields = {f: form.cleaned_data[f] for f in form.changed_data if f in form.cleaned_data}
        if change:
            if fields:
                actions.update_bank(HashBank.objects.get(pk=obj.pk), user=request.user, **fields)
        else:
            saved = actions.create_bank(user=request.user, **{f: form.cleaned_data[f] for f in form.cleaned_data})
            obj.pk = saved.pk

    def delete_model(self, request: HttpRequest, obj: HashBank) -> None:
        from apps.moderation import actions

        actions.delete_bank(obj, user=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[HashBank]) -> None:
        for bank in queryset:
            self.delete_model(request, bank)

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> tuple[Any, Any, set[str], Any]:
        """A bank's entries go with it (``bank.deleted`` records how many): deleting the bank needs no
        permission on the read-only entries."""
        deleted, counts, _perms_needed, protected = super().get_deleted_objects(objs, request)
        return deleted, counts, set(), protected


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
