"""SIGTERM to a worker (what Kubernetes sends to a pod's main process) is a warm shutdown: the
running stage finishes before the worker exits. The Deployments' grace periods rely on it."""

from __future__ import annotations

import os
import signal

import pytest

from tests.pipeline.helpers import ingest_text, stage, wait_stage

pytestmark = pytest.mark.django_db(transaction=True)


def test_sigterm_lets_the_running_stage_finish_before_the_worker_exits(start_worker, isolated_storage, tmp_path):
    w = start_worker(name="warm-stop", concurrency=1)
    text = "Warm shutdown keeps running work. " * 20
    asset = ingest_text(tmp_path, text, faults={"text_extract": {"sleep_first": 6}})
    wait_stage(asset, "text_extract", {"running"}, timeout=90)
    os.kill(w.proc.pid, signal.SIGTERM)  # the main process only, as the kubelet does
    assert w.proc.wait(timeout=60) == 0
    run = stage(asset, "text_extract")
    assert (run.status, run.attempts) == ("done", 1)
