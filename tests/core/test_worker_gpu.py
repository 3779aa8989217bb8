"""``python -m workers --gpu N``: one worker per GPU, its pool children see only that device."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT, wait_for, worker_env


@pytest.mark.django_db(transaction=True)
def test_gpu_flag_pins_the_worker_children_to_one_device(start_worker):
    log = ROOT / "var" / "test" / "worker-gpu1.log"  # appended to across runs: read only this run's part
    offset = log.stat().st_size if log.exists() else 0

    def this_run() -> str:
        with log.open("rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")

    start_worker(role="gpu", concurrency=1, name="gpu1", extra=["--gpu", "1"])
    wait_for(lambda: "CUDA_VISIBLE_DEVICES=" in this_run(), timeout=90, what="the pool child to report its GPU")
    assert "CUDA_VISIBLE_DEVICES=1," in this_run() or "CUDA_VISIBLE_DEVICES=1\n" in this_run(), this_run()


@pytest.mark.parametrize(("args", "message"), [
    (["--role", "cpu", "--gpu", "0"], "--gpu needs a role that runs models on the GPU"),
    (["--role", "gpu", "--gpu", "0,1"], "--gpu takes one device index"),
    (["--role", "gpu", "--gpu", "first"], "--gpu takes one device index"),
])
def test_gpu_flag_refuses_a_cpu_role_or_more_than_one_device(args, message):
    r = subprocess.run([sys.executable, "-m", "workers", *args], cwd=ROOT, env=worker_env(),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr
    assert "Traceback" not in r.stderr
