"""Users in the Django admin: roles change only through :func:`apps.accounts.services.set_role`
(admin actions), so a role change always removes the other roles and is audited. API tokens are
listed (prefix, state) and revoked through :func:`revoke_token`; their secrets are never shown."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.accounts.models import ApiToken
from apps.accounts.services import revoke_token, set_role
from apps.core.admin import ReadOnlyAdmin
from apps.core.roles import ADMIN, MODERATOR, ROLES, UPLOADER

User = get_user_model()
ROLE_FIELDS = ("is_staff", "is_superuser", "groups", "user_permissions")


def _role_action(role: str) -> Any:
    def action(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
        changed = sum(set_role(u, role, actor=request.user) for u in queryset)
        modeladmin.message_user(request, f"{changed} user(s) now have the {role} role (and no other).",
                                messages.SUCCESS)

    action.__name__ = f"make_{role}"
    return admin.action(description=f"Set role: {role} (removes the other roles)")(action)


class RoleUserAdmin(UserAdmin):
    list_display = ["username", "email", "role", "is_active", "last_login"]
    list_filter = ["groups", "is_active"]
    actions = [_role_action(r) for r in (UPLOADER, MODERATOR, ADMIN)]
    fieldsets = [(None, {"fields": ("username", "password")}),
                 ("Personal info", {"fields": ("first_name", "last_name", "email")}),
                 ("Role", {"fields": ("role", "is_active"),
                           "description": "Change the role with the actions of the user list."}),
                 ("Important dates", {"fields": ("last_login", "date_joined")})]
    readonly_fields = ["role", "last_login", "date_joined"]

    @admin.display(description="role")
    def role(self, obj: Any) -> str:
        names = sorted(obj.groups.filter(name__in=ROLES).values_list("name", flat=True))
        return ", ".join(names) or "—"


admin.site.unregister(User)
admin.site.register(User, RoleUserAdmin)


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdmin):
    list_display = ["id", "prefix", "user", "name", "state", "created_at", "expires_at", "last_used_at"]
    list_filter = ["revoked_at"]
    search_fields = ["prefix", "user__username", "name"]
    exclude = ["digest"]
    actions = ["revoke"]

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        n = sum(revoke_token(t, actor=request.user, reason="admin") for t in queryset)
        self.message_user(request, f"Revoked {n} token(s).", messages.SUCCESS)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser and obj is None  # the changelist (for the action), never a form
