"""The environment is read by the settings modules only (12-factor: one place to see the configuration).

An AST scan of apps/, workers/, mediacommon/ and mediaintel/ finds every use of ``os.environ`` and
``os.getenv``. Allowed, and only where listed in ``ALLOWED`` with the reason:

- the settings modules (``mediaintel/settings.py`` reads through its typed readers in
  ``mediaintel/env.py``; ``mediaintel/settings_test.py``);
- process bootstrap that runs before the settings exist or builds another process's environment
  (the embedded stack, the ``make run`` supervisor, ``python -m workers``, the probe's sandboxed
  child, pool-child thread limits);
- variables owned by a third-party library that reads them itself (Tesseract's ``TESSDATA_PREFIX``,
  prometheus_client's ``PROMETHEUS_MULTIPROC_DIR``);
- engine defaults for direct use (benches, the engines' own tests): :func:`pick_device` and
  :func:`model_cache_dir`, where the caller passes nothing; workers pass the configured value.

Anywhere: ``os.environ.setdefault("<LIBRARY_VAR>", ...)`` with a literal name not starting with
``MEDIAINTEL_``, which configures a third-party library before it is imported (``HF_HUB_OFFLINE``,
``YOLO_OFFLINE``; the WSGI/ASGI/Celery entry points' ``DJANGO_SETTINGS_MODULE``). Stages'
configuration comes from ``settings.MEDIAINTEL_STAGES`` (one object per stage, read by the version
catalog and by the engines alike).

``bench/`` and ``tests/`` are not scanned: benchmarks and tests start processes and set their
environment.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("apps", "workers", "mediacommon", "mediaintel")

#: path → {function name (or "<module>") → reason}; "*" allows the whole file.
ALLOWED: dict[str, dict[str, str]] = {
    "mediaintel/settings_test.py": {"*": "the test settings module"},
    "mediaintel/env.py": {"*": "the settings module's typed readers"},
    "mediaintel/devstack.py": {"*": "embedded stack bootstrap: runs before settings and picks their profile"},
    "mediaintel/supervisor.py": {"*": "`make run` supervisor: builds the environment of the processes it starts"},
    "workers/__main__.py": {"main": "worker CLI: sets its children's environment before settings load"},
    "workers/process.py": {
        "threads_per_child": "pool-child bootstrap: the thread share `python -m workers` hands its children",
        "limit_threads": "pool-child bootstrap: numeric libraries' thread variables, set before they import",
    },
    "apps/assets/probe.py": {
        "_child_env": "builds the sandboxed probe child's minimal environment",
        "_child": "the sandboxed probe child (no Django) receives its pixel limit from the parent",
    },
    "mediacommon/metrics.py": {"multiproc_dir": "prometheus_client's own variable, needed at import"},
    "workers/engines/ocr.py": {"find_tessdata": "Tesseract's own TESSDATA_PREFIX"},
    "workers/engines/base.py": {
        "pick_device": "engine default for direct use when no device is passed (workers pass the setting)",
        "model_cache_dir": "engine default cache directory for direct use (benches, engine tests)",
        "cpu_threads": "OpenMP's own OMP_NUM_THREADS: the thread share limit_threads set for this process, "
                       "read as the numeric libraries read it",
    },
}


def _is_env(node: ast.AST) -> bool:
    """``os.environ`` or ``os.getenv`` (or ``environ`` / ``getenv`` imported from os)."""
    if isinstance(node, ast.Attribute) and node.attr in {"environ", "getenv", "environb", "getenvb"}:
        return isinstance(node.value, ast.Name) and node.value.id == "os"
    return False


def _library_setdefault(node: ast.Call) -> bool:
    f = node.func
    return (isinstance(f, ast.Attribute) and f.attr == "setdefault" and _is_env(f.value) and bool(node.args)
            and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
            and not node.args[0].value.startswith("MEDIAINTEL_"))


def environment_uses(path: Path) -> list[tuple[int, str]]:
    """(line, enclosing function or "<module>") of every environment use not configuring a library."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[tuple[int, str]] = []
    excused: set[int] = set()

    def visit(node: ast.AST, func: str) -> None:
        if isinstance(node, ast.ImportFrom) and node.module == "os" and any(
                a.name in {"environ", "getenv", "environb", "getenvb"} for a in node.names):
            found.append((node.lineno, func))
        if isinstance(node, ast.Call) and _library_setdefault(node):
            excused.add(id(node.func.value))  # type: ignore[attr-defined]
        if _is_env(node) and id(node) not in excused:
            found.append((node.lineno, func))
        inner = node.name if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) else func
        for child in ast.iter_child_nodes(node):
            visit(child, inner)

    visit(tree, "<module>")
    return found


def _violations() -> list[str]:
    out = []
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            allowed = ALLOWED.get(rel, {})
            for line, func in environment_uses(path):
                if "*" not in allowed and func not in allowed:
                    out.append(f"{rel}:{line} in {func}")
    return out


def test_only_settings_read_the_environment_when_the_tree_is_scanned():
    violations = _violations()
    assert not violations, ("environment read outside the settings (add a setting, or a reasoned entry to "
                            "ALLOWED):\n" + "\n".join(violations))


def test_scan_finds_a_read_when_a_module_reads_the_environment(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import os\nfrom os import getenv\n\ndef f():\n    return os.environ.get('MEDIAINTEL_X')\n\n"
                      "def g():\n    os.environ.setdefault('HF_HUB_OFFLINE', '1')\n"
                      "    os.environ.setdefault('MEDIAINTEL_Y', '1')\n    return 'K' in os.environ\n")
    assert environment_uses(sample) == [(2, "<module>"), (5, "f"), (9, "g"), (10, "g")]


def test_every_allowed_entry_still_reads_the_environment():
    """A stale allow-list entry would hide a new read later: each entry must match a current use."""
    stale = []
    for rel, funcs in ALLOWED.items():
        uses = {func for _, func in environment_uses(ROOT / rel)} if (ROOT / rel).is_file() else set()
        stale += [f"{rel}:{f}" for f in funcs if f != "*" and f not in uses]
        if "*" in funcs and not uses:
            stale.append(f"{rel}:*")
    assert not stale, stale
