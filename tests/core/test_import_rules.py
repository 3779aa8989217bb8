"""The shared package's allow-list, checked on the source (every import, lazy ones too):
``mediacommon/`` (shared by web and workers) imports only the standard library, PyAV, Pillow and
the observability clients both tiers pin in base.txt (prometheus_client, opentelemetry): never
Django, numpy or a model library.

The other import rules of docs/architecture.md (which package may import which) are the
import-linter contracts of pyproject.toml, run by tests/test_architecture.py; an allow-list of
third-party packages is the one rule those contracts (lists of what is forbidden) cannot state.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import ROOT


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module
            for alias in node.names:  # ``from workers.engines import decode``
                yield node.lineno, f"{node.module}.{alias.name}"


def _sources(*dirs: str) -> Iterator[Path]:
    for d in dirs:
        yield from (p for p in (ROOT / d).rglob("*.py") if "migrations" not in p.parts)


def test_the_shared_package_imports_only_stdlib_av_pillow_and_the_observability_clients():
    allowed = set(sys.stdlib_module_names) | {"av", "PIL", "mediacommon", "__future__", "prometheus_client",
                                              "opentelemetry"}
    offenders = [
        f"{p.relative_to(ROOT)}:{line}: {name}"
        for p in _sources("mediacommon")
        for line, name in _imports(p)
        if name.split(".")[0] not in allowed
    ]
    assert not offenders, "\n".join(offenders)
