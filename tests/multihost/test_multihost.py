"""Six hosts on one machine (network namespaces, no shared filesystem): the pipeline across them.

Hosts (see tests/multihost/hosts.py): db (PostgreSQL 18 + pgvector), mq (Redis), s3 (SeaweedFS),
web (gunicorn + beat from the requirements/base.txt environment), cpu (worker, role ``cpu``) and
gpu (worker, role ``gpu`` on CPU). The test process reaches them through the switch only.

1. A video, an audio file, an image and four text documents go in through the web host's API and
   end ``ready``; their insight rows are the reference (rows per file, insight kind and stage).
2. Kill every process of the gpu host while a (slowed) stage runs there: the cpu host finishes it
   (attempt 2) and every asset ends ready.
3. A fresh gpu worker; cut the gpu host's link mid-stage until its lease lapses and the cpu host
   has done the stage, restore it: the stage was done once (attempt 2, by the cpu host) and the
   gpu host's late completion is refused (its log says so).
4. Every stage of every asset forced again (on the cpu host alone: the gpu host's worker is
   stopped): the insight rows equal the reference and those after the faults — the same results
   whichever host ran what, and no effect of a fault duplicated.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from tests import media
from tests.core.test_web_tier import DOC, Web, _build_web_venv
from tests.multihost.hosts import PG_PORT, WEB_PORT, Cluster, namespaces_unavailable

pytestmark = [pytest.mark.slow]

TEXTS = [DOC,
         "The harbour festival opens on Saturday with boats, music and food stalls.",
         "Some visitor wrote: you are a stupid idiot and I will kill you.",
         "Trains to the airport run every ten minutes from platform four."]
SLOW = 25.0  # seconds the slowed stage sleeps on its first attempt


def _insight_tables() -> list[str]:
    from apps.insights import models as im

    return [m._meta.db_table for m in (im.Scene, im.Keyframe, im.TranscriptSegment, im.OcrText, im.Detection,
                                       im.Tag, im.NsfwScore, im.TextSpanFlag, im.Language, im.PerceptualHash,
                                       im.TextChunk, im.ImageEmbedding)]


class Db:
    """The db host's database, read by the test process over the switch."""

    def __init__(self, c: Cluster) -> None:
        import psycopg
        from psycopg.rows import dict_row

        self.conn = psycopg.connect(host=c.ip("db"), port=PG_PORT, user="postgres", dbname="mediaintel",
                                    autocommit=True, row_factory=dict_row)
        from apps.assets.models import MediaAsset
        from apps.pipeline.models import StageRun

        self.assets, self.runs = MediaAsset._meta.db_table, StageRun._meta.db_table
        self.insight_tables = _insight_tables()

    def q(self, template: str, table: str, *args: Any) -> list[dict[str, Any]]:
        """``template`` with ``{t}`` replaced by the quoted ``table``; ``%s`` bound to ``args``."""
        from psycopg import sql

        return self.conn.execute(sql.SQL(template).format(t=sql.Identifier(table)), args).fetchall()

    def statuses(self, ids: list[str]) -> dict[str, str]:
        return {str(r["id"]): r["status"] for r in self.q("SELECT id, status FROM {t} WHERE id::text = ANY(%s)",
                                                          self.assets, ids)}

    def current(self, ids: list[str], stage: str) -> list[dict[str, Any]]:
        return self.q("SELECT id, asset_id::text AS asset, status, attempts, worker FROM {t} "
                      "WHERE current AND stage = %s AND asset_id::text = ANY(%s) ORDER BY id", self.runs, stage, ids)

    def stage_table(self, ids: list[str]) -> str:
        return "\n".join(f"{r['asset']} {r['stage']}: {r['status']} attempts={r['attempts']} {r['worker']}"
                         for r in self.q("SELECT asset_id::text AS asset, stage, status, attempts, worker "
                                         "FROM {t} WHERE current AND asset_id::text = ANY(%s) "
                                         "ORDER BY 1, 2", self.runs, ids))

    def set_faults(self, ids: list[str], faults: dict[str, Any]) -> None:
        self.q("UPDATE {t} SET metadata = jsonb_set(metadata, '{{_faults}}', %s::jsonb) "
               "WHERE id::text = ANY(%s) RETURNING id", self.assets, json.dumps(faults), ids)

    def insight_counts(self, names: dict[str, str]) -> dict[tuple[str, str, str], int]:
        """Rows per (file name, insight table, stage): what "the same results" is judged on."""
        out: Counter[tuple[str, str, str]] = Counter()
        for table in self.insight_tables:
            for r in self.q("SELECT asset_id::text AS asset, stage, count(*) AS n FROM {t} "
                            "WHERE asset_id::text = ANY(%s) GROUP BY 1, 2", table, list(names)):
                out[(names[r["asset"]], table, r["stage"])] += r["n"]
        return dict(out)


def wait(predicate: Callable[[], Any], timeout: float, what: str, on_fail: Callable[[], str] = lambda: "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}\n{on_fail()}")


@pytest.fixture
def cluster() -> Any:
    why = namespaces_unavailable()
    if why:
        pytest.skip(why)
    web_venv = _build_web_venv()
    t0 = time.monotonic()
    with Cluster() as c:
        c.start_postgres()
        c.start_redis()
        c.start_s3()
        c.start_web(web_venv)
        print(f"\n[multihost] db, mq, s3 and web hosts up in {time.monotonic() - t0:.1f}s "
              f"(subnet {c.subnet}.0/24)")
        yield c


def test_media_flow_across_six_hosts_and_survive_a_killed_host_and_a_cut_link(cluster, tmp_path):
    c = cluster
    t0 = time.monotonic()
    db = Db(c)
    web = Web(f"http://{c.ip('web')}:{WEB_PORT}", c.token, c.home / "web" / "gunicorn.log")
    c.start_worker("cpu", "cpu", concurrency=2)
    gpu = c.start_worker("gpu", "gpu", concurrency=2)

    # 1. the media go in through the web host's API
    files = [media.make_video(tmp_path / "clip.mp4", (("checker:teal", 1.5), ("gradient", 1.5)), size=(320, 240),
                              tone_hz=440.0, motion=False),
             media.make_tone_wav(tmp_path / "tone.wav", 2.0),
             media.make_image(tmp_path / "still.png", size=(320, 240))]
    for i, text in enumerate(TEXTS):
        (tmp_path / f"doc{i}.txt").write_text(text)
        files.append(tmp_path / f"doc{i}.txt")
    names: dict[str, str] = {}
    for path in files:
        status, body = web.upload(path)
        assert status == 201, (path.name, status, body)
        names[body["id"]] = path.name
    ids = list(names)
    texts = [i for i, n in names.items() if n.endswith(".txt")]

    def settled(which: list[str] = ids) -> dict[str, str] | None:
        s = db.statuses(which)
        return s if set(s.values()) <= {"ready", "failed"} else None

    t1 = time.monotonic()
    final = wait(settled, 600, "the uploads to be processed", lambda: db.stage_table(ids))
    assert set(final.values()) == {"ready"}, db.stage_table(ids)
    print(f"[multihost] {len(ids)} uploads ready in {time.monotonic() - t1:.1f}s")
    reference = db.insight_counts(names)
    assert reference, "no insight rows at all"
    keys = c.s3_client().list_objects_v2(Bucket="mediaintel-mh").get("KeyCount", 0)
    assert keys >= len(ids), "the originals are not in the S3 host's bucket"
    # no host wrote media into its own folders: they travel through S3 only
    for host in ("web", "cpu", "gpu"):
        assert not any((c.home / host / "media").iterdir()), f"{host} stored media locally"

    def running_on(host: str) -> dict[str, Any] | None:
        return next((r for r in db.current(texts, "text_embed")
                     if r["status"] == "running" and r["worker"].startswith(c.ns(host) + ":")), None)

    def slow_text_embed() -> None:
        db.set_faults(texts, {"text_embed": {"sleep_first": SLOW}})
        c.manage("reprocess", "--all", "--stage", "text_embed", *(a for t in texts for a in ("--asset", t)))

    # 2. every process of the gpu host SIGKILLed mid-stage: the cpu host finishes its work
    slow_text_embed()
    victim = wait(lambda: running_on("gpu"), 120, "a slowed stage running on the gpu host",
                  lambda: db.stage_table(texts))
    killed = c.kill_host("gpu")
    assert killed and gpu.popen.poll() is not None and not c.pids("gpu")
    t2 = time.monotonic()
    wait(lambda: settled(texts), 180, "the texts after the gpu host was killed", lambda: db.stage_table(texts))
    print(f"[multihost] gpu host killed: every text ready {time.monotonic() - t2:.1f}s later")
    run = next(r for r in db.current(texts, "text_embed") if r["id"] == victim["id"])
    assert (run["status"], run["attempts"]) == ("done", 2), run
    assert run["worker"].startswith(c.ns("cpu") + ":"), run
    assert set(db.statuses(ids).values()) == {"ready"}, db.stage_table(ids)

    # 3. a fresh gpu worker; its link cut mid-stage until the cpu host has done the stage, then restored
    gpu = c.start_worker("gpu", "gpu", concurrency=2)
    slow_text_embed()
    victim = wait(lambda: running_on("gpu"), 120, "a slowed stage running on the fresh gpu worker",
                  lambda: db.stage_table(texts) + "\n" + c.worker_logs("gpu")[-3000:])
    c.link("gpu", up=False)
    t3 = time.monotonic()
    try:
        def taken_over() -> bool:
            r = next(r for r in db.current(texts, "text_embed") if r["id"] == victim["id"])
            return r["status"] == "done" and r["attempts"] == 2

        wait(taken_over, 120, "the cut-off stage to be done by the cpu host", lambda: db.stage_table(texts))
        print(f"[multihost] gpu link cut: its stage done on the cpu host {time.monotonic() - t3:.1f}s later")
    finally:
        c.link("gpu", up=True)
    refusal = f"run {victim['id']} was taken over; results discarded"
    wait(lambda: refusal in c.worker_logs("gpu"), SLOW + 120, "the gpu worker's late completion to be refused",
         lambda: c.worker_logs("gpu")[-3000:])
    wait(lambda: settled(texts), 120, "the texts after the link came back", lambda: db.stage_table(texts))
    run = next(r for r in db.current(texts, "text_embed") if r["id"] == victim["id"])
    assert (run["status"], run["attempts"]) == ("done", 2), run
    assert run["worker"].startswith(c.ns("cpu") + ":"), run
    assert set(db.statuses(ids).values()) == {"ready"}, db.stage_table(ids)
    after_faults = db.insight_counts(names)
    assert after_faults == reference

    # 4. every stage forced again, on the cpu host alone: the same rows as the first run
    c.kill_host("gpu")
    db.set_faults(ids, {})
    c.manage("reprocess", "--all", *(a for i in ids for a in ("--asset", i)))
    wait(lambda: (lambda s: s if set(s.values()) <= {"ready", "failed"} and
                  not db.q("SELECT 1 FROM {t} WHERE current AND status <> ALL(%s) AND asset_id::text = "
                           "ANY(%s) LIMIT 1", db.runs, ["done", "skipped"], ids) else None)(db.statuses(ids)),
         600, "the forced reprocess", lambda: db.stage_table(ids))
    assert set(db.statuses(ids).values()) == {"ready"}, db.stage_table(ids)
    assert db.insight_counts(names) == reference
    print(f"[multihost] whole test body {time.monotonic() - t0:.1f}s")
