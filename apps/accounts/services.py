"""Account actions: role changes and API tokens. Each owns its transaction and writes its audit
record inside it; the ``createuser`` and ``tokens`` commands and the Django admin call them."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import ApiToken
from apps.audit.services import Actor, record
from apps.core.roles import ADMIN, ROLES, ensure_groups

TOKEN_PREFIX = "mi_"  # noqa: S105  (a marker, not a secret)
PREFIX_CHARS = 11  # "mi_" and 8 characters of the secret: enough to tell tokens apart in a listing


def _actor(actor: Any, component: str) -> Actor:
    if isinstance(actor, Actor):
        return actor
    if getattr(actor, "is_authenticated", False):
        return Actor.user(actor)
    return Actor.system(component)


def digest(secret: str) -> str:
    """What is stored of a token: its SHA-256 (a token carries 256 random bits; no salt is needed)."""
    return hashlib.sha256(secret.encode()).hexdigest()


# ------------------------------------------------------------------ roles
def set_role(user: Any, role: str, *, actor: Any) -> bool:
    """Make ``role`` the user's only role group; admins are staff and superusers, others neither.

    Returns whether anything changed; a change is audited (``user.role_changed``, from/to).
    """
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    ensure_groups()
    with transaction.atomic():
        type(user).objects.select_for_update().filter(pk=user.pk).first()
        before = sorted(user.groups.filter(name__in=ROLES).values_list("name", flat=True))
        admin = role == ADMIN
        changed = before != [role] or user.is_staff != admin or user.is_superuser != admin
        if not changed:
            return False
        user.groups.remove(*Group.objects.filter(name__in=[r for r in ROLES if r != role]))
        user.groups.add(Group.objects.get(name=role))
        user.is_staff = user.is_superuser = admin
        user.save(update_fields=["is_staff", "is_superuser"])
        record("user.role_changed", target_type="user", target_id=user.pk, actor=_actor(actor, "accounts"),
               payload={"username": user.get_username(), "from": before, "to": role})
    return True


# ------------------------------------------------------------------ tokens
def create_token(user: Any, *, actor: Any, name: str = "", days: int | None = None,
                 replace: bool = False) -> tuple[ApiToken, str]:
    """A new token for ``user``; returns the row and the secret, which is shown once and never stored.

    ``days``: lifetime (default ``MEDIAINTEL_TOKEN_LIFETIME_DAYS``). ``replace``: first revoke the
    user's active tokens with the same name. Audited (``token.created``, and ``token.revoked``).
    """
    days = settings.MEDIAINTEL_TOKEN_LIFETIME_DAYS if days is None else days
    if not 1 <= days <= settings.MEDIAINTEL_TOKEN_MAX_DAYS:
        raise ValueError(f"--days must be between 1 and {settings.MEDIAINTEL_TOKEN_MAX_DAYS}")
    who = _actor(actor, "accounts")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = timezone.now()
    with transaction.atomic():
        if replace:
            for old in ApiToken.objects.select_for_update().filter(user=user, name=name[:100],
                                                                   revoked_at__isnull=True):
                _revoke(old, who, reason="replaced")
        token = ApiToken.objects.create(
            user=user, name=name[:100], prefix=secret[:PREFIX_CHARS], digest=digest(secret), created_at=now,
            expires_at=now + timedelta(days=days), created_by=actor if getattr(actor, "pk", None) else None)
        record("token.created", target_type="api_token", target_id=token.pk, actor=who,
               payload={"user": user.get_username(), "prefix": token.prefix, "name": token.name,
                        "expires_at": token.expires_at})
    return token, secret


def _revoke(token: ApiToken, who: Actor, reason: str) -> bool:
    n = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    if n:
        record("token.revoked", target_type="api_token", target_id=token.pk, actor=who,
               payload={"user_id": token.user_id, "prefix": token.prefix, "name": token.name, "reason": reason})
    return bool(n)


def revoke_token(token: ApiToken, *, actor: Any, reason: str = "") -> bool:
    """Revoke one token (for good); False when it already was. Audited (``token.revoked``)."""
    with transaction.atomic():
        return _revoke(token, _actor(actor, "accounts"), reason)
