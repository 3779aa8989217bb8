"""Text the database cannot store.

PostgreSQL holds no NUL (U+0000) in ``text`` or ``jsonb``: a value carrying one fails to save. The
API refuses such input with a 400 naming the field (docs/api.md, "Text"); this is the one test of
"carries one", for plain strings and for JSON values (keys included).
"""

from __future__ import annotations

from typing import Any


def contains_nul(value: Any) -> bool:
    """Whether ``value`` (a string, or a JSON value of dicts, lists and scalars) holds U+0000 anywhere."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            if "\x00" in v:
                return True
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, list | tuple):
            stack.extend(v)
    return False
