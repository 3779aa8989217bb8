"""The import contracts of pyproject.toml (``[tool.importlinter]``, docs/architecture.md "Import
rules") hold on the tree, and each of them catches a violation.

``lint-imports`` (import-linter, pinned in requirements/dev.txt) builds the import graph from the
source without importing it: every ``import``, a lazy one inside a function too, is an edge, and a
chain through other modules breaks a contract like a direct import. The negative cases copy the
tree's Python files into a temporary directory, add one offending module, and check that exactly
the contract it violates reports it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGES = ("apps", "mediaintel", "mediacommon", "workers")
CONFIG = ROOT / "pyproject.toml"
# importlinter.cli has no ``__main__``: call its console entry point the way ``lint-imports`` does
LINT = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"


def lint_imports(tree: Path, *contracts: str) -> subprocess.CompletedProcess[str]:
    """Runs the project's contracts (all, or the given ids) over the packages under ``tree``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(tree), os.environ.get("PYTHONPATH")) if p)}
    args = [sys.executable, "-c", LINT, "--config", str(CONFIG), "--no-cache", "--no-logo"]
    for c in contracts:
        args += ["--contract", c]
    return subprocess.run(args, cwd=tree, env=env, capture_output=True, text=True, timeout=300, check=False)


def test_the_tree_keeps_every_import_contract():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout, result.stdout


@pytest.fixture(scope="module")
def tree_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's packages (Python files only) in a directory of their own."""
    dest = tmp_path_factory.mktemp("tree")
    keep = shutil.ignore_patterns("__pycache__", "*.pyc", "static", "templates", "migrations")
    for pkg in PACKAGES:
        shutil.copytree(ROOT / pkg, dest / pkg, ignore=keep)
    return dest


def contract_ids() -> list[str]:
    return [c["id"] for c in tomllib.loads(CONFIG.read_text())["tool"]["importlinter"]["contracts"]]


# (contract, others it necessarily breaks too, module added to the copy, its source). Most imports
# sit inside a function, where a lazy import would hide from a scan of top-level imports.
VIOLATIONS = [
    pytest.param("web-no-models", {"tiers"}, "apps/search/_offender.py",
                 "def f():\n    from workers.engines import decode\n    return decode\n", id="web-imports-an-engine"),
    pytest.param("web-no-models", set(), "mediaintel/_offender.py",
                 "def f():\n    import torch\n    return torch\n", id="web-imports-torch"),
    pytest.param("engines-pure", set(), "workers/engines/_offender.py",
                 "def f():\n    from django.conf import settings\n    return settings\n", id="engine-imports-django"),
    pytest.param("engines-pure", set(), "workers/engines/_offender.py",
                 "from apps.insights.models import Tag\n", id="engine-imports-web-models"),
    pytest.param("shared-neutral", set(), "mediacommon/_offender.py",
                 "def f():\n    import django\n    return django\n", id="shared-imports-django"),
    pytest.param("shared-neutral", {"tiers"}, "mediacommon/_offender.py",
                 "def f():\n    import apps.pipeline.plans\n    return apps.pipeline.plans\n",
                 id="shared-imports-web-code"),
    pytest.param("core-below-features", set(), "apps/core/_offender.py",
                 "def f():\n    from apps.pipeline.models import Job\n    return Job\n",
                 id="core-imports-a-feature-app"),
    pytest.param("moderation-above-pipeline", set(), "apps/pipeline/_offender.py",
                 "def f():\n    from apps.moderation import services\n    return services\n",
                 id="pipeline-imports-moderation"),
    pytest.param("worker-layers", set(), "workers/eventbus/_offender.py",
                 "def f():\n    from workers.tasks import decode\n    return decode\n", id="machinery-imports-a-task"),
    pytest.param("worker-layers", {"engines-pure"}, "workers/engines/_offender.py",
                 "def f():\n    from workers import blobcache\n    return blobcache\n", id="engine-imports-machinery"),
    pytest.param("tiers", set(), "apps/assets/_offender.py",
                 "def f():\n    from workers import blobcache\n    return blobcache\n", id="web-imports-worker-code"),
]


def test_the_copied_tree_keeps_every_contract_without_an_offender(tree_copy: Path):
    result = lint_imports(tree_copy)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("contract", "also", "module", "source"), VIOLATIONS)
def test_a_contract_breaks_when_code_imports_across_its_rule(tree_copy: Path, contract: str, also: set[str],
                                                             module: str, source: str):
    offender = tree_copy / module
    offender.write_text(source)
    try:
        broken = lint_imports(tree_copy, contract)
        others = lint_imports(tree_copy, *[c for c in contract_ids() if c != contract and c not in also])
    finally:
        offender.unlink()
    dotted = module.removesuffix(".py").replace("/", ".")
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert "1 broken" in broken.stdout and dotted in broken.stdout, broken.stdout
    assert others.returncode == 0, others.stdout + others.stderr  # no other rule is touched
