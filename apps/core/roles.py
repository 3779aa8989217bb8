"""Roles are Django groups: ``uploader``, ``moderator``, ``admin``; DRF permissions check them."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Group
from rest_framework.permissions import BasePermission

UPLOADER, MODERATOR, ADMIN = "uploader", "moderator", "admin"
ROLES = (UPLOADER, MODERATOR, ADMIN)


def ensure_groups(**_: Any) -> None:
    """Create the role groups (idempotent; runs after every migrate)."""
    for name in ROLES:
        Group.objects.get_or_create(name=name)


def has_role(user: AbstractBaseUser | AnonymousUser, *roles: str) -> bool:
    """True when the user is active and in any of ``roles`` (superusers and admins pass everything)."""
    if not user or not user.is_authenticated or not user.is_active:
        return False
    if user.is_superuser:
        return True
    names = set(user.groups.values_list("name", flat=True))
    return ADMIN in names or bool(names.intersection(roles))


def is_admin(user: AbstractBaseUser | AnonymousUser) -> bool:
    return has_role(user, ADMIN)


class IsUploader(BasePermission):
    message = "This needs the uploader role."

    def has_permission(self, request, view) -> bool:
        return has_role(request.user, UPLOADER, MODERATOR)


class IsModerator(BasePermission):
    message = "This needs the moderator role."

    def has_permission(self, request, view) -> bool:
        return has_role(request.user, MODERATOR)


class IsAdmin(BasePermission):
    message = "This needs the admin role."

    def has_permission(self, request, view) -> bool:
        return is_admin(request.user)
