"""Metrics fit Prometheus across processes; the alert rules and the dashboard validate.

A real gunicorn (two workers) and a real Celery worker (two pool children) share one
``PROMETHEUS_MULTIPROC_DIR``, as under ``make run``: the web's ``/metrics`` counts every request
whichever worker answered it (also one that was killed meanwhile), shows the stage and engine
metrics the pool children observed, and passes ``promtool check metrics``; the worker's own port
(``MEDIAINTEL_WORKER_METRICS_PORT``, as in Kubernetes) serves the same worker metrics. The rules
pass ``promtool check rules`` and every metric the rules and the dashboard query is one the
platform defines.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, wait_for, worker_env
from tests.pipeline.helpers import ingest_text, wait_status

OBS = ROOT / "deploy" / "observability"
PROMTOOL = shutil.which("promtool")


def _promtool() -> str:
    assert PROMTOOL, "promtool not found: `make install` installs Debian's prometheus package (APT_PACKAGES)"
    return PROMTOOL


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 10) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310  (a local test server)
        return r.read().decode()


def _samples(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$", line)
        if not m or m.group(1) != name:
            continue
        got = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        if all(got.get(k) == v for k, v in labels.items()):
            total += float(m.group(4))
    return total


# ------------------------------------------------------------------ rules and dashboard

def test_alert_rules_pass_promtool():
    out = subprocess.run([_promtool(), "check", "rules", str(OBS / "alerts.yml")], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout


def test_promtool_refuses_a_broken_rule(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("groups:\n  - name: x\n    rules:\n      - alert: Broken\n        expr: sum(rate(x[5m]) > \n")
    out = subprocess.run([_promtool(), "check", "rules", str(bad)], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0


def _defined_series() -> set[str]:
    """Every series name the platform can export: the shared metrics (with their _total, _bucket,
    _count, _sum forms) and the families the scrape-time collector yields."""
    from prometheus_client import REGISTRY

    import mediacommon.metrics  # noqa: F401  (defines the shared metrics)
    from apps.pipeline.collector import PipelineCollector

    names: set[str] = set()
    families = [*REGISTRY.collect(), *PipelineCollector().collect()]
    for fam in families:
        if not fam.name.startswith("mediaintel_"):
            continue
        if fam.type == "counter":
            names.add(fam.name + "_total")
        elif fam.type == "histogram":
            names |= {fam.name + s for s in ("_bucket", "_count", "_sum")}
        else:
            names.add(fam.name)
    return names


def _queried(expr: str) -> set[str]:
    return set(re.findall(r"\b(mediaintel_[a-z0-9_]+)\b", expr))


@pytest.mark.django_db
def test_rules_and_dashboard_query_only_metrics_that_exist():
    defined = _defined_series()
    assert {"mediaintel_stage_runs_total", "mediaintel_engine_call_duration_seconds_bucket",
            "mediaintel_queue_oldest_message_age_seconds", "mediaintel_engine_gpu_memory_bytes"} <= defined
    rules = yaml.safe_load((OBS / "alerts.yml").read_text())
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"]}
    # stalled stages, dead-letter growth, queue age, error rate, queue without consumer
    assert {"MediaIntelStagesStalled", "MediaIntelDeadLettersGrowing", "MediaIntelQueueMessagesOld",
            "MediaIntelStageErrorRate", "MediaIntelHttpErrorRate", "MediaIntelQueueWithoutConsumer"} <= alerts
    dash = json.loads((OBS / "dashboard.json").read_text())
    panel_exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    assert len(panel_exprs) >= 10
    for expr in exprs + panel_exprs:
        unknown = _queried(expr) - defined
        assert not unknown, f"{expr!r} queries metrics nobody exports: {sorted(unknown)}"
        assert _queried(expr), f"{expr!r} queries no MediaIntel metric"
    prom = yaml.safe_load((OBS / "prometheus.yml").read_text())
    assert all((OBS / f).exists() for f in prom["rule_files"])


def test_the_dashboard_check_catches_a_misspelt_metric():
    assert _queried("rate(mediaintel_stage_run_total[5m])") - {"mediaintel_stage_runs_total"} == {
        "mediaintel_stage_run_total"}


# ------------------------------------------------------------------ a real multiprocess scrape

@pytest.fixture
def multiproc_dir(tmp_path: Path) -> Path:
    d = tmp_path / "prometheus"
    d.mkdir()
    return d


@pytest.mark.django_db(transaction=True)
def test_metrics_across_gunicorn_workers_and_pool_children_pass_promtool(
        start_worker, isolated_storage, tmp_path, multiproc_dir):
    env = worker_env(PROMETHEUS_MULTIPROC_DIR=str(multiproc_dir), MEDIAINTEL_FAULT_INJECTION="0")
    worker_port = _free_port()
    start_worker(env={"PROMETHEUS_MULTIPROC_DIR": str(multiproc_dir),
                      "MEDIAINTEL_WORKER_METRICS_PORT": str(worker_port)})
    web_port = _free_port()
    log = (ROOT / "var" / "test" / "gunicorn-metrics.log").open("ab")
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "mediaintel.wsgi", "-c", "python:mediaintel.gunicorn_conf",
         "-b", f"127.0.0.1:{web_port}", "-w", "2", "--no-control-socket"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{web_port}"
        wait_for(lambda: _try(f"{base}/livez"), timeout=60, what="gunicorn up")
        asset = ingest_text(tmp_path, "A short note about the harbour festival on Saturday.\n")
        wait_status(asset, {"ready", "failed"}, timeout=180)
        assert asset.status == "ready"

        def livez_count() -> float:
            return _samples(_get(f"{base}/metrics"), "mediaintel_http_request_duration_seconds_count",
                            route="livez")

        before = livez_count()
        for _ in range(40):
            _get(f"{base}/livez")
        assert livez_count() == before + 40, "a request is counted once, whichever gunicorn worker answers"
        # a gunicorn worker dies (as on a crash or max-requests): its requests stay counted
        pids = _children(web.pid)
        assert len(pids) == 2, pids
        os.kill(pids[0], signal.SIGKILL)
        wait_for(lambda: len(_children(web.pid)) == 2 and pids[0] not in _children(web.pid), timeout=30,
                 what="gunicorn replaced the killed worker")
        for _ in range(10):
            _get(f"{base}/livez")
        assert livez_count() == before + 50, "counters of an exited process stay in the merge"

        text = _get(f"{base}/metrics")
        # the pool children's stage and engine metrics, merged into the web's scrape
        for stage in ("text_extract", "language", "text_embed", "text_flags", "moderate"):
            assert _samples(text, "mediaintel_stage_runs_total", stage=stage, outcome="done") == 1, stage
            assert _samples(text, "mediaintel_stage_run_duration_seconds_count", stage=stage) == 1, stage
            assert _samples(text, "mediaintel_stage_queue_wait_seconds_count", stage=stage) == 1, stage
        assert _samples(text, "mediaintel_engine_calls_total", engine="text_embed", outcome="ok") == 1
        assert _samples(text, "mediaintel_engine_batch_size_sum", engine="text_embed") >= 1
        assert _samples(text, "mediaintel_engine_model_load_duration_seconds_count") >= 1
        assert _samples(text, "mediaintel_queue_consumers", queue="decode") >= 1
        assert _samples(text, "mediaintel_queue_oldest_message_age_seconds", queue="decode") == 0  # drained
        checked = subprocess.run([_promtool(), "check", "metrics"], input=text, capture_output=True, text=True,
                                 timeout=60)
        assert checked.returncode == 0, checked.stdout + checked.stderr

        # the worker host's own endpoint serves the same pool-children metrics
        wtext = _get(f"http://127.0.0.1:{worker_port}/metrics")
        assert _samples(wtext, "mediaintel_engine_calls_total", engine="text_embed", outcome="ok") == 1
        checked = subprocess.run([_promtool(), "check", "metrics"], input=wtext, capture_output=True, text=True,
                                 timeout=60)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    finally:
        os.killpg(web.pid, signal.SIGTERM)
        try:
            web.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(web.pid, signal.SIGKILL)


def _try(url: str) -> bool:
    try:
        _get(url, timeout=2)
        return True
    except OSError:
        return False


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def test_queue_age_is_read_from_the_oldest_message_header(settings, empty_broker):
    """The message published 120 s ago (by its header), at the consuming end of the list, makes the queue
    120 s old, however many newer ones wait behind it."""
    import redis

    from apps.pipeline.metrics import SENT_AT_HEADER, oldest_message_ages

    r = redis.Redis.from_url(settings.BROKER_URL)
    now = time.time()
    r.lpush("decode", json.dumps({"headers": {SENT_AT_HEADER: now - 120}}))
    r.lpush("decode", json.dumps({"headers": {SENT_AT_HEADER: now - 5}}))
    r.lpush("detect", json.dumps({"headers": {}}))  # published without the header: unknown age
    try:
        ages = oldest_message_ages(now=now)
        assert ages["decode"] == pytest.approx(120, abs=0.01)
        assert ages["detect"] == 0 and ages["transcribe"] == 0
    finally:
        r.delete("decode", "detect")


def test_a_dead_process_keeps_its_counts_but_not_its_live_gauges(tmp_path, monkeypatch):
    """A pool child killed without any exit hook: its counter stays in the merge (counters are
    cumulative), its ``livesum`` gauge goes at the next scrape (the dead-pid sweep)."""
    from mediacommon.metrics import exposition

    d = tmp_path / "prometheus"
    child = ("import os, signal\n"
             "from mediacommon.metrics import STAGE_RUNNING, STAGE_RUNS\n"
             "STAGE_RUNS.labels('ocr', 'ocr', 'done').inc(3)\n"
             "STAGE_RUNNING.labels('ocr').inc()\n"
             "os.kill(os.getpid(), signal.SIGKILL)\n")
    r = subprocess.run([sys.executable, "-c", child], cwd=ROOT, env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(d)},
                       timeout=60)
    assert r.returncode == -signal.SIGKILL
    assert any(p.name.startswith("gauge_livesum") for p in d.iterdir())
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(d))
    text = exposition().decode()
    assert _samples(text, "mediaintel_stage_runs_total", stage="ocr", outcome="done") == 3
    assert _samples(text, "mediaintel_stage_running", stage="ocr") == 0
    assert not any(p.name.startswith("gauge_livesum") for p in d.iterdir())
    checked = subprocess.run([_promtool(), "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_promtool_check_metrics_refuses_a_counter_without_total():
    bad = "# HELP jobs Jobs.\n# TYPE jobs counter\njobs 1\n"
    checked = subprocess.run([_promtool(), "check", "metrics"], input=bad, capture_output=True, text=True, timeout=60)
    assert checked.returncode != 0 and "_total" in checked.stdout + checked.stderr
