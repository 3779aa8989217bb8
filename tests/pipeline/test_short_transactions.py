"""No database transaction stays open while a model runs.

Visual stages read their keyframes, run a model for seconds, then write their rows. Were the run
inside the completing transaction, the worker's connection would sit ``idle in transaction`` for
the whole model run (holding locks and snapshots that stall vacuum and other writers). This test
watches ``pg_stat_activity`` while real workers process a video and allows no transaction older
than a second that is waiting on the worker; it then checks every stage's rows still landed.
"""

from __future__ import annotations

import threading

from django.db import connection

from apps.insights import models as im
from apps.pipeline.models import StageRun
from tests import media
from tests.pipeline.helpers import wait_status

LONG_IDLE_TRANSACTIONS = """
    SELECT count(*), max(extract(epoch FROM now() - xact_start))
    FROM pg_stat_activity
    WHERE datname = current_database() AND pid <> pg_backend_pid()
      AND state LIKE 'idle in transaction%%' AND now() - xact_start > interval '1 second'
"""


def test_no_transaction_stays_open_while_visual_models_run(start_worker, isolated_storage, tmp_path):
    start_worker(concurrency=2)
    scenes = [("noise:1", 2.0), ("checker:cyan", 2.0), ("noise:2", 2.0), ("stripes", 2.0), ("noise:3", 2.0)]
    video = media.make_video(tmp_path / "scenes.mp4", scenes, size=(1280, 720), motion=False)
    from apps.assets.services import ingest_local_file

    seen: list[tuple[int, float | None]] = []
    stop = threading.Event()

    def watch() -> None:
        from django.db import connections

        try:
            while not stop.is_set():
                with connections["default"].cursor() as cur:
                    cur.execute(LONG_IDLE_TRANSACTIONS)
                    n, age = cur.fetchone()
                if n:
                    seen.append((n, age))
                stop.wait(0.1)
        finally:
            connections["default"].close()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        asset = ingest_local_file(video).asset
        wait_status(asset, {"ready", "failed"}, timeout=600)
    finally:
        stop.set()
        watcher.join(10)
    runs = {r.stage: (r.status, r.error_message) for r in StageRun.objects.filter(asset=asset)}
    assert asset.status == "ready", runs
    assert seen == [], f"transactions left open while a stage ran: (count, seconds) {seen[:10]}"
    # the deferred writes all landed, with their stage's completion
    assert im.Keyframe.objects.filter(asset=asset).count() >= len(scenes)
    assert im.NsfwScore.objects.filter(asset=asset).count() == im.Keyframe.objects.filter(asset=asset).count()
    assert im.Tag.objects.filter(asset=asset).exists() and im.PerceptualHash.objects.filter(asset=asset).exists()
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM insights_textchunk WHERE asset_id = %s AND tsv IS NULL", [asset.pk])
        assert cur.fetchone()[0] == 0  # the full-text column written after the chunks, in the same commit
