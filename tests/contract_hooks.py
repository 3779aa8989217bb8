"""schemathesis hooks for ``tests/test_api_contract.py`` (loaded through ``SCHEMATHESIS_HOOKS``).

Invariant: every webhook target the run could make the server contact is the test's local
receiver. A generated subscription ``url`` that is an http(s) URL with a host — one the server
would accept and later send to — is replaced by ``MEDIAINTEL_CONTRACT_RECEIVER`` (a URL on
127.0.0.1); any other value is left as generated, so an invalid one still tests the refusal.
Nothing else is changed.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

import schemathesis


def _sendable(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        parts = urlsplit(value)
        return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
    except ValueError:
        return False


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    if "/webhooks/" in case.operation.path and isinstance(case.body, dict) \
            and _sendable(case.body.get("url")):
        case.body = {**case.body, "url": os.environ["MEDIAINTEL_CONTRACT_RECEIVER"]}
    return case
