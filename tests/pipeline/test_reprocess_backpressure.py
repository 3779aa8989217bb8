"""Exact reprocessing, backpressure and saturation, against real services."""

from __future__ import annotations

import pytest
import redis
from django.core.management import call_command
from rest_framework.test import APIClient

from apps.pipeline.models import StageRun
from tests.pipeline.helpers import ingest_text, stage, wait_status

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

TEXT = "Clear skies over the valley; the market opens at nine.\n\nYou idiot, that stall was mine, flibbertyjib."


def _snapshot(asset):
    return {r.key: (r.status, r.attempts, r.finished_at) for r in StageRun.objects.filter(asset=asset)}


def test_reprocess_reruns_only_stale_stages(start_worker, isolated_storage, tmp_path, settings, capsys):
    lexicon = tmp_path / "extra.yaml"
    lexicon.write_text("insult:\n  - flibbertyjib\n")
    w = start_worker()
    asset = ingest_text(tmp_path, TEXT)
    wait_status(asset, {"ready"})
    before = _snapshot(asset)
    from apps.insights.models import TextSpanFlag

    assert "flibbertyjib" not in set(TextSpanFlag.objects.filter(asset=asset).values_list("matched", flat=True))
    call_command("reprocess", "--stale", "--dry-run")
    assert "0 stage(s)" in capsys.readouterr().out
    call_command("reprocess", "--missing")
    call_command("reprocess", "--failed")
    assert _snapshot(asset) == before  # nothing current was re-run
    # the text-flags engine is reconfigured (a new lexicon) on planner and workers alike
    from dataclasses import replace

    stages = settings.MEDIAINTEL_STAGES
    settings.MEDIAINTEL_STAGES = replace(stages, text_flags=replace(stages.text_flags, lexicon_paths=(str(lexicon),)))
    w.stop()
    start_worker(env={"MEDIAINTEL_LEXICON_PATH": str(lexicon)})
    call_command("reprocess", "--stale", "--dry-run")
    out = capsys.readouterr().out
    assert "text_flags" in out and "1 stage(s)" in out
    call_command("reprocess", "--stale")
    wait_status(asset, {"ready"})
    from tests.conftest import wait_for

    wait_for(lambda: stage(asset, "text_flags").status == "done", what="text_flags re-run")
    after = _snapshot(asset)
    changed = {k.split(":")[1] for k in after if after[k] != before.get(k)}
    assert changed == {"text_flags", "moderate"}  # the stale stage and what depends on it, nothing else
    from apps.insights.models import TextSpanFlag

    matched = set(TextSpanFlag.objects.filter(asset=asset).values_list("matched", flat=True))
    assert "flibbertyjib" in matched and "idiot" in {m.lower() for m in matched}
    old = StageRun.objects.get(asset=asset, stage="text_flags", current=False)
    assert old.engine_version != stage(asset, "text_flags").engine_version


def test_reprocess_api_validates_and_starts(isolated_storage, tmp_path, django_user_model):
    from django.contrib.auth.models import Group

    asset = ingest_text(tmp_path, TEXT)
    mod = django_user_model.objects.create_user("mod", password="x")
    mod.groups.add(Group.objects.get(name="moderator"))
    c = APIClient()
    c.force_authenticate(mod)
    bad = c.post(f"/api/v1/assets/{asset.pk}/reprocess", {"stages": ["transcribe"], "mode": "all"}, format="json")
    assert bad.status_code == 409 and bad.json()["error"]["code"] == "unknown_stage"  # not in a text plan
    ok = c.post(f"/api/v1/assets/{asset.pk}/reprocess", {"stages": ["language"], "mode": "all"}, format="json")
    assert ok.status_code == 202 and ok.json()["stages"] == ["language"]


def test_full_queue_holds_stages_pending_until_released(isolated_storage, tmp_path, settings):
    from apps.pipeline import backpressure
    from apps.pipeline.services import release_pending

    r = redis.Redis.from_url(settings.BROKER_URL)
    r.delete("decode")
    settings.MEDIAINTEL_QUEUE_LIMITS = {**settings.MEDIAINTEL_QUEUE_LIMITS, "decode": 0}
    backpressure._cache.clear()
    asset = ingest_text(tmp_path, TEXT)
    assert stage(asset, "text_extract").status == "pending" and r.llen("decode") == 0
    settings.MEDIAINTEL_QUEUE_LIMITS = {**settings.MEDIAINTEL_QUEUE_LIMITS, "decode": 10}
    backpressure._cache.clear()
    assert release_pending() == 1
    assert stage(asset, "text_extract").status == "queued" and r.llen("decode") == 1
    r.delete("decode")


def test_saturated_system_answers_503_and_ingest_waits(isolated_storage, tmp_path, settings, monkeypatch,
                                                      django_user_model):
    from django.contrib.auth.models import Group

    settings.MEDIAINTEL_MAX_BACKLOG = 1
    ingest_text(tmp_path, TEXT)  # one stage waiting → saturated
    user = django_user_model.objects.create_user("u", password="x")
    user.groups.add(Group.objects.get(name="uploader"))
    c = APIClient()
    c.force_authenticate(user)
    p = tmp_path / "b.txt"
    p.write_text("another document")
    with p.open("rb") as f:
        resp = c.post("/api/v1/assets/", {"file": f}, format="multipart")
    assert resp.status_code == 503 and resp["Retry-After"] == "30"
    assert resp.json()["error"]["code"] == "saturated"
    # the command waits instead of failing: it proceeds once the backlog clears
    calls = {"n": 0}
    from apps.pipeline import backpressure

    real = backpressure.saturation

    def clears_after_two() -> str | None:
        calls["n"] += 1
        return "busy" if calls["n"] <= 2 else None

    monkeypatch.setattr(backpressure, "saturation", clears_after_two)
    monkeypatch.setattr("time.sleep", lambda s: None)
    call_command("ingest", str(p))
    assert calls["n"] == 3
    monkeypatch.setattr(backpressure, "saturation", real)
