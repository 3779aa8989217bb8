"""``manage.py tokens list|create|revoke``: API tokens (only digests are stored; a secret is shown once)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from apps.accounts.models import ApiToken
from apps.accounts.services import create_token, revoke_token
from apps.audit.services import Actor

ACTOR = Actor.system("manage.py tokens")


def _user(username: str) -> Any:
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise CommandError(f"no user named {username!r}")
    return user


class Command(BaseCommand):
    help = "List, create and revoke API tokens."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, metavar="list|create|revoke")
        ls = sub.add_parser("list", help="tokens (active ones unless --all); never their secrets")
        ls.add_argument("--user", help="only this user's")
        ls.add_argument("--all", action="store_true", help="include expired and revoked tokens")
        mk = sub.add_parser("create", help="a new token for USER, printed once")
        mk.add_argument("username")
        mk.add_argument("--name", default="", help="what the token is for")
        mk.add_argument("--days", type=int, default=None,
                        help=f"lifetime in days (default {settings.MEDIAINTEL_TOKEN_LIFETIME_DAYS})")
        mk.add_argument("--replace", action="store_true", help="revoke USER's active tokens with the same name")
        rv = sub.add_parser("revoke", help="revoke a token by id, or every active token of --user")
        rv.add_argument("token_id", nargs="?")
        rv.add_argument("--user", help="revoke all of this user's active tokens")

    def handle(self, *args: Any, action: str, **opts: Any) -> None:
        getattr(self, f"_{action}")(**opts)

    def _list(self, user: str | None = None, all: bool = False, **_: Any) -> None:
        qs = ApiToken.objects.select_related("user").order_by("user__username", "-created_at")
        if user:
            qs = qs.filter(user=_user(user))
        if not all:
            qs = qs.filter(revoked_at__isnull=True, expires_at__gt=timezone.now())
        self.stdout.write(f"{'id':>6}  {'prefix':<12} {'user':<20} {'name':<16} {'state':<8} "
                          f"{'expires':<20} last used")
        for t in qs:
            used = t.last_used_at.strftime("%Y-%m-%d %H:%M") if t.last_used_at else "never"
            self.stdout.write(f"{t.pk:>6}  {t.prefix:<12} {t.user.get_username()[:20]:<20} {t.name[:16]:<16} "
                              f"{t.state:<8} {t.expires_at.strftime('%Y-%m-%d %H:%M'):<20} {used}")

    def _create(self, username: str, name: str, days: int | None, replace: bool, **_: Any) -> None:
        user = _user(username)
        try:
            token, secret = create_token(user, actor=ACTOR, name=name, days=days, replace=replace)
        except ValueError as e:
            raise CommandError(str(e)) from None
        self.stdout.write(f"token={secret}")
        self.stdout.write(f"token_id={token.pk} user={username} expires={token.expires_at.isoformat()} "
                          "(shown once: store it now)")

    def _revoke(self, token_id: str | None, user: str | None, **_: Any) -> None:
        if token_id is None and not user:
            raise CommandError("give a token id or --user USER")
        if user:
            tokens = list(ApiToken.objects.filter(user=_user(user), revoked_at__isnull=True))
        else:
            if not token_id.isdigit():
                raise CommandError(f"a token id is a number (see `tokens list`), not {token_id!r}")
            tokens = list(ApiToken.objects.filter(pk=int(token_id)))
            if not tokens:
                raise CommandError(f"no token with id {token_id}")
        n = sum(revoke_token(t, actor=ACTOR, reason="manage.py tokens revoke") for t in tokens)
        self.stdout.write(f"revoked {n} token{'s' if n != 1 else ''}")
