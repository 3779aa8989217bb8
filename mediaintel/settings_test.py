"""Test settings: the ``test`` profile's embedded stack (own ports and data dirs)."""

import os

os.environ.setdefault("MEDIAINTEL_PROFILE", "test")
os.environ.setdefault("MEDIAINTEL_ENV", "development")  # plain HTTP to live servers on 127.0.0.1
os.environ.setdefault("SECRET_KEY", "test-only-" + "k3y-" * 12)
os.environ.setdefault("DEBUG", "1")
# the suite makes many requests as one user and one address; tests of throttling set low rates themselves
for _scope in ("ANON", "USER", "SEARCH", "SIMILAR", "UPLOAD"):
    os.environ.setdefault(f"MEDIAINTEL_THROTTLE_{_scope}", "1000000/min")

from mediaintel.settings import *  # noqa: E402, F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
MEDIAINTEL_STAGE_LEASE = float(os.environ.get("MEDIAINTEL_STAGE_LEASE", "6"))
MEDIAINTEL_STAGE_REDISPATCH_AFTER = float(os.environ.get("MEDIAINTEL_STAGE_REDISPATCH_AFTER", "5"))
# Test databases are emptied between transactional tests; the audit table refuses TRUNCATE
# unless the session declares maintenance (production connections never do).
DATABASES["default"]["OPTIONS"] = {**DATABASES["default"]["OPTIONS"],  # noqa: F405
                                   "options": "-c mediaintel.audit_maintenance=on"}
