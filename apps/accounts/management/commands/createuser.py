"""``manage.py createuser NAME --role R [--password P] [--no-token]``: a user with exactly one role
and a new API token (printed once)."""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.accounts.services import create_token, set_role
from apps.audit.services import Actor
from apps.core.roles import ROLES


class Command(BaseCommand):
    help = ("Create a user, or change an existing user's role (the role replaces any other), and print a new "
            "API token (shown once).")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=ROLES)
        parser.add_argument("--password", help="login password (random when omitted for a new user)")
        parser.add_argument("--email", default="")
        parser.add_argument("--no-token", action="store_true", help="do not create an API token")

    def handle(self, *args: Any, username: str, role: str, password: str | None, email: str, no_token: bool,
               **_: Any) -> None:
        if not username.strip():
            raise CommandError("username must not be empty")
        model = get_user_model()
        for name, value in ((model.USERNAME_FIELD, username), ("email", email)):
            if name == "email" and not value:
                continue
            try:  # the model's own rules (length, allowed characters, e-mail form) before any row is written
                model._meta.get_field(name).clean(value, None)
            except ValidationError as e:
                raise CommandError(f"{name}: {' '.join(e.messages)}") from None
        actor = Actor.system("manage.py createuser")
        user, created = model.objects.get_or_create(username=username, defaults={"email": email})
        pw = password or secrets.token_urlsafe(12)
        if created or password:
            user.set_password(pw)
            user.save(update_fields=["password"])
        set_role(user, role, actor=actor)
        self.stdout.write(f"user={username} role={role} created={created}")
        if created or password:
            self.stdout.write(f"password={pw}")
        if not no_token:
            token, secret = create_token(user, actor=actor, name="createuser")
            self.stdout.write(f"token={secret}")
            self.stdout.write(f"token_id={token.pk} expires={token.expires_at.isoformat()} "
                              "(the token is shown once: store it now)")
