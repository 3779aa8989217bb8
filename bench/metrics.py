"""Scrape cost of ``/metrics`` against the size of the stage history.

Run on the test profile's stack::

    MEDIAINTEL_PROFILE=test .venv/bin/python bench/metrics.py [--sizes 10000,100000,300000]

What it does, all in one run:

* starts the test profile's PostgreSQL/Redis if needed (``devstack.up``) and makes its **own
  database** with Django's test-database machinery (``test_mediaintel_metricsbench``, migrated,
  destroyed at the end); its broker is Redis DB 5 of the test stack (flushed), so no developer or
  test database or queue is touched;
* fills ``StageRun`` to each size (one asset and job; 96 % ``done``, 1 % ``dead``, 3 % queued,
  running or retrying, spread over every queue, finished over the last two hours), ``ANALYZE``;
* **baseline**: what every scrape ran before, reproduced here: the grouped count over the whole
  stage table by stage and status, the last hour's mean run and wait per stage and status, and the
  in-flight grouping (apps/pipeline/health.py);
* **now**: ``apps.pipeline.collector.PipelineCollector().collect()`` — the in-flight grouping, the worker
  presence rows and one pipelined Redis call for depths and oldest-message ages — and the whole
  ``/metrics`` body (``mediacommon.metrics.exposition``);
* 5 warm-up runs, then the median and p95 of 30 runs each, interleaved; prints a table and writes
  the ``## Metrics scrape`` section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._report import machine, machine_line, md_table, write_section


def old_scrape_queries() -> None:
    """The queries the previous ``/metrics`` ran on every scrape (stage_stats + queue_health)."""
    from datetime import timedelta

    from django.db.models import Avg, Count, ExpressionWrapper, F, FloatField
    from django.db.models.functions import Extract
    from django.utils import timezone

    from apps.pipeline.health import queue_health
    from apps.pipeline.models import StageRun

    since = timezone.now() - timedelta(hours=1)
    run_s = ExpressionWrapper(Extract(F("finished_at") - F("started_at"), "epoch"), output_field=FloatField())
    wait_s = ExpressionWrapper(Extract(F("started_at") - F("queued_at"), "epoch"), output_field=FloatField())
    list(StageRun.objects.values("stage", "status").annotate(n=Count("id")))
    list(StageRun.objects.filter(finished_at__gte=since).values("stage", "status").annotate(
        n=Count("id"), run_s=Avg(run_s), wait_s=Avg(wait_s)))
    queue_health()


def new_collect() -> None:
    from apps.pipeline.collector import PipelineCollector

    list(PipelineCollector().collect())


def new_exposition() -> None:
    from apps.pipeline.collector import PipelineCollector
    from mediacommon.metrics import exposition

    exposition(PipelineCollector())


def fill(n: int, asset: Any, job: Any) -> None:
    """Grow StageRun to ``n`` rows with one INSERT ... SELECT generate_series."""
    from django.db import connection

    from apps.pipeline.models import StageRun
    from mediacommon.routing import STAGE_QUEUES

    have = StageRun.objects.count()
    if have >= n:
        return
    stages = list(STAGE_QUEUES.items())
    stage_arr = "ARRAY[" + ",".join(f"'{s}'" for s, _ in stages) + "]"  # names from the routing table
    queue_arr = "ARRAY[" + ",".join(f"'{q}'" for _, q in stages) + "]"
    table = StageRun._meta.db_table
    sql = (
        f"INSERT INTO {table} (asset_id, job_id, stage, needs, engine, engine_version, key, current, status, "  # noqa: S608
        "attempts, max_attempts, queue, task_id, worker, created_at, queued_at, started_at, heartbeat_at, "
        "finished_at, error_class, error_message, traceback, skip_reason, summary) "
        f"SELECT %s, %s, ({stage_arr})[1 + i %% {len(stages)}], '[]', 'bench', 'v1', 'bench-' || i, false, "
        "CASE WHEN i % 100 = 0 THEN 'dead' WHEN i % 100 = 1 THEN 'queued' WHEN i % 100 = 2 THEN 'running' "
        "WHEN i % 100 = 3 THEN 'retrying' ELSE 'done' END, "
        f"1, 3, ({queue_arr})[1 + i %% {len(stages)}], '', '', now() - (i %% 7200) * interval '1 second', "
        "now() - (i % 7200) * interval '1 second', now() - (i % 7200) * interval '1 second' + interval '2 second', "
        "now() - (i % 7200) * interval '1 second' + interval '2 second', "
        "CASE WHEN i % 100 >= 4 OR i % 100 = 0 THEN now() - (i % 7200) * interval '1 second' + interval '5 second' "
        "END, '', '', '', '', '{}' FROM generate_series(%s, %s) AS i"
    ).replace("i % ", "i %% ")
    with connection.cursor() as cur:
        cur.execute(sql, [asset.pk, job.pk, have + 1, n])
        cur.execute(f"ANALYZE {table}")


def timed(fn: Callable[[], None]) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000,300000")
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    a = ap.parse_args(argv)

    os.environ.setdefault("MEDIAINTEL_PROFILE", "test")
    os.environ["DJANGO_SETTINGS_MODULE"] = "mediaintel.settings_test"
    from mediaintel import devstack

    prof = devstack.profile("test")
    env = devstack.up(prof)
    from urllib.parse import urlparse

    base_url = urlparse(os.environ.get("DATABASE_URL", env.get("DATABASE_URL", prof.database_url)))
    os.environ["DATABASE_URL"] = base_url._replace(path="/mediaintel_metricsbench").geturl()
    broker = urlparse(os.environ.get("BROKER_URL", env.get("BROKER_URL", "")))
    os.environ["BROKER_URL"] = broker._replace(path="/5").geturl()
    import tempfile

    work = Path(tempfile.mkdtemp(prefix="mi-bench-metrics-"))
    os.environ["MEDIAINTEL_MEDIA_ROOT"] = str(work)
    os.environ["MEDIAINTEL_STORAGE"] = "local"

    import django

    django.setup()
    import redis
    from django.conf import settings
    from django.db import connection

    redis.Redis.from_url(settings.BROKER_URL).flushdb()
    test_db = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    rows: list[tuple[str, ...]] = [("stage runs", "before: full GROUP BY + in-flight (median / p95 ms)",
                                    "now: collector (median / p95 ms)", "now: whole /metrics body (median / p95 ms)")]
    try:
        import apps.pipeline.services as pipeline_services
        from apps.assets.services import ingest_local_file
        from apps.pipeline.models import Job

        pipeline_services.start_pipeline = lambda *a, **k: None  # no stage messages: only the table grows
        doc = work / "doc.txt"
        doc.write_text("bench\n")
        asset = ingest_local_file(doc).asset
        job = Job.objects.create(asset=asset, plan_version="bench")
        for n in [int(x) for x in a.sizes.split(",")]:
            t = time.perf_counter()
            fill(n, asset, job)
            print(f"{n} stage runs ready in {time.perf_counter() - t:.1f}s", flush=True)
            fns = {"old": old_scrape_queries, "collect": new_collect, "expo": new_exposition}
            for fn in fns.values():
                for _ in range(5):
                    fn()
            got: dict[str, list[float]] = {k: [] for k in fns}
            for _ in range(a.runs):
                for k, fn in fns.items():
                    got[k].append(timed(fn))

            def cell(xs: list[float]) -> str:
                xs = sorted(xs)
                return f"{statistics.median(xs):.1f} / {xs[int(0.95 * (len(xs) - 1))]:.1f}"

            rows.append((f"{n:,}", cell(got["old"]), cell(got["collect"]), cell(got["expo"])))
            print(md_table(rows), flush=True)
        load = os.getloadavg()[0]
    finally:
        connection.creation.destroy_test_db(test_db, verbosity=0)
        redis.Redis.from_url(settings.BROKER_URL).flushdb()
    m = machine()
    text = (f"Machine: {machine_line(m)}; commit {m['commit']}; {m['date']}; load average (1 min) at the end "
            f"{load:.2f} (a shared host: compare the columns of one row, measured interleaved in the same run).\n\n"
            "`bench/metrics.py`: what one scrape of `/metrics` costs as the stage history grows. *Before* is the "
            "previous scrape's queries (a grouped count over the whole stage table, the last hour's means, the "
            "in-flight grouping), reproduced in the bench; *now* is the scrape-time collector (in-flight grouping, "
            "presence rows, one pipelined Redis call for queue depths and oldest-message ages) and the whole "
            f"exposition. {a.runs} interleaved runs each after 5 warm-up runs. The synthetic history keeps 3 % of "
            "the rows in flight (queued, running, retrying), so the *now* column still grows with those rows (the "
            "in-flight grouping), not with the finished history.\n\n" + md_table(rows))
    print(text)
    if not a.no_write:
        write_section("Metrics scrape", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
