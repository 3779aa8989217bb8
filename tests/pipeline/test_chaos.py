"""Chaos on real processes: infrastructure faults mid-run strand nothing, lose nothing, duplicate nothing.

Each test runs real worker processes against the test profile's real PostgreSQL and Redis,
injects a fault while stages are queued and running, and ends with every asset ``ready`` and
every stage's effect exactly once: the same insight rows as a fault-free run of the same
content (a forced reprocess on the same workers, after the fault).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from django.db import InterfaceError, OperationalError, connection

from apps.assets.models import MediaAsset
from apps.insights import models as im
from apps.pipeline.models import DeadLetter, StageRun
from apps.pipeline.reprocess import Selection
from apps.pipeline.reprocess import run as reprocess_run
from mediaintel import devstack
from tests.assets.s3 import SeaweedS3, seaweedfs_fixture  # noqa: F401  (the session fixture `seaweedfs`)
from tests.conftest import ROOT, WorkerProcess, wait_for, worker_env
from tests.pipeline.helpers import ingest_text

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

TEXTS = [
    "The harbour festival opens on Saturday with boats, music and food stalls.",
    "Rain is expected in the valley on Sunday; the mountain road closes at dusk.",
    "Some visitor wrote: you are a stupid idiot and I will kill you.",
    "The library extends its opening hours during the exam weeks in June.",
    "A new bakery on the corner sells rye bread, pretzels and plum cake.",
    "Trains to the airport run every ten minutes from platform four.",
]

INSIGHTS = [im.Scene, im.Keyframe, im.TranscriptSegment, im.OcrText, im.Detection, im.Tag, im.NsfwScore,
            im.TextSpanFlag, im.Language, im.PerceptualHash, im.TextChunk, im.ImageEmbedding]


def db_safe(fn: Callable[[], Any]) -> Callable[[], Any]:
    """``fn`` that answers None while the database is out (the test's own connection reconnects)."""

    def call() -> Any:
        try:
            return fn()
        except (OperationalError, InterfaceError):
            connection.close()
            return None

    return call


def ingest_all(tmp_path: Path, faults: dict[str, Any] | None = None) -> list[MediaAsset]:
    return [ingest_text(tmp_path, t, name=f"doc{i}.txt", faults=faults) for i, t in enumerate(TEXTS)]


def wait_all(assets: list[MediaAsset], statuses: set[str], timeout: float, tick: Any = None) -> float:
    """Wait until every asset's status is in ``statuses`` (returns the seconds it took); on timeout
    fail with every stage's state."""
    ids = [a.pk for a in assets]
    def all_settled() -> bool:
        found = list(MediaAsset.objects.filter(pk__in=ids).values_list("status", flat=True))
        assert len(found) == len(ids), "assets vanished from the database"
        return set(found) <= statuses

    settled = db_safe(all_settled)
    tick = db_safe(tick) if tick else None
    t0 = time.monotonic()
    while not settled():
        if time.monotonic() - t0 > timeout:
            pytest.fail(f"after {timeout:.0f}s not every asset is in {statuses}:\n{stage_table(ids)}")
        if tick:
            tick()
        time.sleep(0.25)
    return time.monotonic() - t0


def report(scenario: str, seconds: float) -> None:
    """Recovery time, printed for docs/operations.md (run with ``-s``)."""
    print(f"\n[recovery] {scenario}: every asset ready {seconds:.1f}s after the fault ended")


def stage_table(ids: list[Any]) -> str:
    return "\n".join(f"{r.asset_id} {r.stage}: {r.status} attempts={r.attempts} {r.error_message[:80]}"
                     for r in StageRun.objects.filter(asset_id__in=ids, current=True).order_by("asset_id", "stage"))


def insight_counts(assets: list[MediaAsset]) -> dict[tuple[str, str, str], int]:
    """Rows per (asset file name, insight kind, stage): what exactly-once is judged on."""
    names = {a.pk: a.filename for a in assets}
    out: Counter[tuple[str, str, str]] = Counter()
    for model in INSIGHTS:
        for asset_id, stage in model.objects.filter(asset_id__in=names).values_list("asset_id", "stage"):
            out[(names[asset_id], model.__name__, stage)] += 1
    return dict(out)


def assert_exactly_once(assets: list[MediaAsset], workers_tick: Any, timeout: float = 120) -> None:
    """Every stage done once in effect: the rows equal those of a fault-free rerun of the same content."""
    for a in assets:
        a.refresh_from_db()
    assert {a.status for a in assets} == {"ready"}, stage_table([a.pk for a in assets])
    after_chaos = insight_counts(assets)
    assert after_chaos, "no insight rows at all"
    chunk_keys = list(im.TextChunk.objects.filter(asset__in=assets).values_list("asset_id", "source", "char_start"))
    assert len(chunk_keys) == len(set(chunk_keys)), "an insight row was duplicated"
    # the fault-free reference: the same content processed again, every stage forced
    reprocess_run(Selection({str(a.pk): ["text_extract"] for a in assets}), reason="chaos-reference")
    wait_all(assets, {"ready"}, timeout=timeout, tick=workers_tick)
    assert insight_counts(assets) == after_chaos


@pytest.fixture
def pg() -> Iterator[devstack.Profile]:
    """The test profile's PostgreSQL, started again after the test whatever happened."""
    p = devstack.profile("test")
    yield p
    devstack.pg_up(p)
    connection.close()


def restart_postgres(p: devstack.Profile, outage: float = 0.0) -> None:
    """Stop PostgreSQL (fast shutdown: every connection is cut), wait ``outage`` s, start it."""
    devstack.pg_down(p)
    assert not devstack.port_open(p.pg_port)
    time.sleep(outage)
    devstack.pg_up(p)
    connection.close()


def pool_children(w: WorkerProcess) -> list[psutil.Process]:
    return psutil.Process(w.proc.pid).children(recursive=True)


def test_postgres_restart_and_killed_pool_children_mid_run_end_ready_exactly_once(start_worker, beat, pg,
                                                                                  isolated_storage, tmp_path):
    w = start_worker(concurrency=2)
    assets = ingest_all(tmp_path, faults={"text_embed": {"sleep_first": 4}})
    wait_for(lambda: StageRun.objects.filter(asset__in=assets, stage="text_embed", status="running").exists(),
             timeout=90, what="a stage running")
    for child in pool_children(w):  # two pool children SIGKILLed mid-stage
        child.send_signal(signal.SIGKILL)
    restart_postgres(pg)  # then a 2-4 s database outage, as a failover or minor upgrade
    report("pool children SIGKILLed + PostgreSQL restarted", wait_all(assets, {"ready", "failed"}, timeout=150,
                                                                        tick=beat))
    assert_exactly_once(assets, beat)
    assert not DeadLetter.objects.exists()


def test_queued_messages_survive_a_30s_database_outage(start_worker, beat, pg, isolated_storage, tmp_path):
    """The defect that stranded work forever: messages taken while the database was out were acked."""
    assets = ingest_all(tmp_path)  # messages wait in the broker: no worker yet
    assert StageRun.objects.filter(asset__in=assets, status="queued").count() == len(assets)
    devstack.pg_down(pg)
    start_worker(concurrency=2)  # takes the messages while the database is unreachable
    time.sleep(30)
    devstack.pg_up(pg)
    connection.close()
    report("30 s database outage, messages taken meanwhile", wait_all(assets, {"ready", "failed"}, timeout=120,
                                                                      tick=beat))
    runs = StageRun.objects.filter(asset__in=assets, stage="text_extract")
    assert {r.attempts for r in runs} == {1}, "an outage of the database must not count as an attempt"
    assert_exactly_once(assets, beat)


def test_database_unreachable_mid_stage_gives_the_stage_back_uncounted(start_worker, beat, pg, isolated_storage,
                                                                       tmp_path):
    start_worker(concurrency=2)
    assets = ingest_all(tmp_path, faults={"text_embed": {"sleep_first": 6}})
    wait_for(lambda: StageRun.objects.filter(asset__in=assets, stage="text_embed", status="running").count() == 2,
             timeout=90, what="two stages running")
    restart_postgres(pg, outage=30)
    report("30 s database outage mid-stage", wait_all(assets, {"ready", "failed"}, timeout=150, tick=beat))
    assert_exactly_once(assets, beat)
    assert not DeadLetter.objects.exists()


def test_blob_store_unreachable_gives_stages_back_uncounted(seaweedfs: SeaweedS3, start_worker, beat, settings,
                                                           tmp_path):
    settings.STORAGES = {**settings.STORAGES, "default": seaweedfs.storage()}
    assets = ingest_all(tmp_path)  # originals in S3; no worker yet
    seaweedfs.stop()
    try:
        start_worker(concurrency=2, env={**seaweedfs.env(), "MEDIAINTEL_WORKER_CACHE": str(tmp_path / "cache")})
        wait_for(lambda: StageRun.objects.filter(asset__in=assets, stage="text_extract",
                                                 error_message__startswith="infrastructure unavailable").exists(),
                 timeout=90, what="a stage given back because the blob store is out")
        time.sleep(15)
    finally:
        seaweedfs.start()
    report("blob store (S3) out ~20 s", wait_all(assets, {"ready", "failed"}, timeout=150, tick=beat))
    runs = StageRun.objects.filter(asset__in=assets, stage="text_extract")
    assert {r.attempts for r in runs} == {1}, "an outage of the blob store must not count as an attempt"
    assert_exactly_once(assets, beat)


def test_sigkill_of_the_worker_main_process_mid_run_is_recovered(start_worker, beat, isolated_storage, tmp_path):
    victim = start_worker(name="victim", concurrency=2)
    assets = ingest_all(tmp_path, faults={"text_embed": {"sleep_first": 20}})
    wait_for(lambda: StageRun.objects.filter(asset__in=assets, stage="text_embed", status="running").exists(),
             timeout=90, what="a stage running")
    os.kill(victim.proc.pid, signal.SIGKILL)  # the main process alone: its children are orphaned
    time.sleep(1)
    start_worker(name="rescuer", concurrency=2)
    report("worker main process SIGKILLed, another worker up", wait_all(assets, {"ready", "failed"}, timeout=150,
                                                                        tick=beat))
    assert_exactly_once(assets, beat)


def test_a_stage_that_kills_its_worker_every_time_ends_dead_with_worker_lost(start_worker, beat, isolated_storage,
                                                                              tmp_path):
    start_worker(concurrency=2)
    doomed = ingest_text(tmp_path, TEXTS[0], name="doomed.txt", faults={"text_flags": {"kill": True}})
    healthy = ingest_text(tmp_path, TEXTS[1], name="healthy.txt")
    wait_all([doomed, healthy], {"ready", "failed"}, timeout=180, tick=beat)
    doomed.refresh_from_db()
    healthy.refresh_from_db()
    run = StageRun.objects.get(asset=doomed, stage="text_flags", current=True)
    assert (healthy.status, doomed.status, run.status) == ("ready", "failed", "dead"), stage_table([doomed.pk])
    assert run.attempts == run.max_attempts == 3
    dl = DeadLetter.objects.get(stage_run=run)
    assert dl.error_class == "WorkerLost" and "worker lost on attempt 3 of 3" in dl.error
    # the asset's other stages finished; only what needs the dead stage waits behind it
    statuses = dict(StageRun.objects.filter(asset=doomed, current=True).values_list("stage", "status"))
    assert statuses == {"text_extract": "done", "language": "done", "text_embed": "done", "text_flags": "dead",
                        "moderate": "pending"}


def _beat_process(tmp_path: Path) -> subprocess.Popen[bytes]:
    env = worker_env()
    log = (ROOT / "var" / "test" / "beat.log").open("ab")
    return subprocess.Popen([sys.executable, "-m", "celery", "-A", "mediaintel", "beat", "-l", "INFO",
                             "-s", str(tmp_path / "celerybeat-schedule")], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)


def test_beat_down_for_a_minute_then_back_recovers_without_a_manual_step(start_worker, isolated_storage, tmp_path):
    """While beat is down nobody re-sends the stage of a worker that died; once beat is back the
    reconciler does, with no manual step, and leaves the long stage of a live worker alone."""
    victim = start_worker(name="victim", concurrency=1)
    beat = _beat_process(tmp_path)
    orphan = ingest_text(tmp_path, TEXTS[0], name="orphan.txt", faults={"text_embed": {"sleep_first": 90}})
    try:
        wait_for(lambda: StageRun.objects.filter(asset=orphan, stage="text_embed", status="running").exists(),
                 timeout=90, what="the stage running on the victim")
        os.killpg(beat.pid, signal.SIGKILL)  # beat down
        beat.wait(10)
        victim.kill()  # a worker dies while beat is down
        start_worker(name="live", concurrency=3)
        long = ingest_text(tmp_path, TEXTS[1], name="long.txt", faults={"text_embed": {"sleep_first": 75}})
        time.sleep(60)
        assert StageRun.objects.get(asset=orphan, stage="text_embed").status == "running"  # stranded, for now
        beat = _beat_process(tmp_path)  # beat is back
        report("beat down 60 s (a worker died meanwhile), beat back",
               wait_all([orphan, long], {"ready", "failed"}, timeout=150))
    finally:
        os.killpg(beat.pid, signal.SIGTERM)
        beat.wait(20)
    attempts = {a.filename: StageRun.objects.get(asset=a, stage="text_embed").attempts for a in (orphan, long)}
    assert attempts == {"orphan.txt": 2, "long.txt": 1}
    assert {a.status for a in MediaAsset.objects.filter(pk__in=[orphan.pk, long.pk])} == {"ready"}
