"""``manage.py createuser NAME --role R [--password P]``: a user with a role and an API token."""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, CommandParser
from rest_framework.authtoken.models import Token

from apps.core.roles import ADMIN, ROLES, ensure_groups


class Command(BaseCommand):
    help = "Create (or update) a user with a role and print an API token."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=ROLES)
        parser.add_argument("--password", help="login password (random when omitted)")
        parser.add_argument("--email", default="")

    def handle(self, *args: Any, username: str, role: str, password: str | None, email: str, **_: Any) -> None:
        if not username.strip():
            raise CommandError("username must not be empty")
        ensure_groups()
        user, created = get_user_model().objects.get_or_create(username=username, defaults={"email": email})
        pw = password or secrets.token_urlsafe(12)
        if created or password:
            user.set_password(pw)
        user.is_staff = role == ADMIN
        user.is_superuser = role == ADMIN
        user.save()
        user.groups.add(Group.objects.get(name=role))
        token, _ = Token.objects.get_or_create(user=user)
        self.stdout.write(f"user={username} role={role} created={created}")
        if created or password:
            self.stdout.write(f"password={pw}")
        self.stdout.write(f"token={token.key}")
