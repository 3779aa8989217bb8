"""DRF authentication by API token: ``Authorization: Token <secret>`` (or ``Bearer <secret>``).

The secret's SHA-256 is looked up; unknown, revoked and expired tokens and inactive users are
refused with 401 and a distinct error code. The last use is recorded at most once a minute.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import Q
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed

from apps.accounts.models import ApiToken
from apps.accounts.services import digest

KEYWORDS = (b"token", b"bearer")
LAST_USED_EVERY = timedelta(minutes=1)


class ApiTokenAuthentication(BaseAuthentication):
    def authenticate(self, request: Any) -> tuple[Any, ApiToken] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() not in KEYWORDS:
            return None
        if len(parts) != 2:
            raise AuthenticationFailed("Send the header as `Authorization: Token <token>`.", code="invalid_token")
        try:
            secret = parts[1].decode()
        except UnicodeDecodeError:
            raise AuthenticationFailed("The token is not valid.", code="invalid_token") from None
        token = ApiToken.objects.select_related("user").filter(digest=digest(secret)).first()
        if token is None:
            raise AuthenticationFailed("The token is not valid.", code="invalid_token")
        now = timezone.now()
        if token.revoked_at is not None:
            raise AuthenticationFailed("The token has been revoked.", code="token_revoked")
        if token.expires_at <= now:
            raise AuthenticationFailed(f"The token expired at {token.expires_at.isoformat()}; create a new one.",
                                       code="token_expired")
        if not token.user.is_active:
            raise AuthenticationFailed("The user is inactive.", code="user_inactive")
        ApiToken.objects.filter(Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_EVERY),
                                pk=token.pk).update(last_used_at=now)
        return token.user, token

    def authenticate_header(self, request: Any) -> str:
        return "Token"  # makes unauthenticated requests 401 (with WWW-Authenticate), not 403


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "apps.accounts.auth.ApiTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {"type": "apiKey", "in": "header", "name": "Authorization",
                "description": "`Token <token>` (or `Bearer <token>`): created by `manage.py createuser` or "
                               "`manage.py tokens create`."}
