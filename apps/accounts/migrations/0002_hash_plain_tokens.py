"""Tokens of the former plain-text table (DRF's ``authtoken_token``) become hashed API tokens.

Each old key is stored as its SHA-256 (so it keeps working) with the default lifetime from now,
named ``migrated``; the plain-text rows are then deleted. Nothing happens on a database that
never had that table.
"""

import hashlib
from datetime import timedelta

from django.conf import settings
from django.db import migrations
from django.utils import timezone


def hash_plain_tokens(apps, schema_editor):
    conn = schema_editor.connection
    if "authtoken_token" not in conn.introspection.table_names():
        return
    ApiToken = apps.get_model("accounts", "ApiToken")
    expires = timezone.now() + timedelta(days=settings.MEDIAINTEL_TOKEN_LIFETIME_DAYS)
    with conn.cursor() as cur:
        cur.execute("SELECT key, user_id, created FROM authtoken_token")
        rows = cur.fetchall()
    for key, user_id, created in rows:
        ApiToken.objects.get_or_create(
            digest=hashlib.sha256(key.encode()).hexdigest(),
            defaults={"user_id": user_id, "name": "migrated", "prefix": key[:8], "created_at": created,
                      "expires_at": expires})
    with conn.cursor() as cur:
        cur.execute("DELETE FROM authtoken_token")


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]
    operations = [migrations.RunPython(hash_plain_tokens, migrations.RunPython.noop)]
