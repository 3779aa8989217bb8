"""Broker failures: Redis restarted mid-run; a SIGKILLed worker with RabbitMQ as broker."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time

import pytest

from mediaintel import devstack
from tests.pipeline.helpers import ingest_text, stage, wait_stage, wait_status

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

TEXT = "Tides and timetables for the island ferry.\n\nThe second paragraph mentions lighthouses."
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"


def test_redis_restart_mid_run_work_resumes(start_worker, beat, isolated_storage, tmp_path, settings):
    if devstack.profile("test").broker_url != settings.BROKER_URL:
        pytest.skip("the broker is external; this test restarts the embedded Redis")
    start_worker()
    asset = ingest_text(tmp_path, TEXT, faults={"text_extract": {"sleep_first": 6}})
    wait_stage(asset, "text_extract", {"running"}, timeout=60)
    p = devstack.profile("test")
    devstack.redis_down(p)
    time.sleep(2)
    devstack.redis_up(p)
    wait_status(asset, {"ready", "failed"}, timeout=150, tick=beat)
    assert asset.status == "ready"
    assert stage(asset, "text_embed").status == "done"


def _rabbit_available() -> bool:
    if devstack.port_open(5672):
        return True
    if shutil.which("rabbitmq-server") is None:
        return False
    subprocess.run(["rabbitmq-server", "-detached"], capture_output=True)
    for _ in range(120):
        if devstack.port_open(5672):
            time.sleep(3)
            return True
        time.sleep(0.5)
    return False


@pytest.fixture
def amqp_broker(settings, monkeypatch):
    if not _rabbit_available():
        pytest.fail("RabbitMQ is not installed/running (make install installs rabbitmq-server)")
    from kombu import Connection

    from mediacommon.routing import QUEUES
    from mediaintel.celery import app

    with Connection(AMQP_URL) as conn:
        ch = conn.channel()
        for q in QUEUES:
            try:
                ch.queue_purge(q)
            except Exception:
                ch = conn.channel()
    settings.BROKER_URL = AMQP_URL

    def send(stage_name: str, queue: str, run_id: int, countdown: float | None = None,
             priority: int | None = None) -> None:  # RabbitMQ queues are declared without priorities
        with Connection(AMQP_URL) as conn:
            app.send_task(f"mediaintel.stage.{stage_name}", args=[run_id], queue=queue, routing_key=queue,
                          countdown=countdown, connection=conn)

    monkeypatch.setattr("apps.pipeline.services.send", send)
    return AMQP_URL


def test_sigkill_with_rabbitmq_broker(amqp_broker, start_worker, beat, isolated_storage, tmp_path):
    w1 = start_worker(name="rabbit-victim", concurrency=1, env={"BROKER_URL": amqp_broker})
    asset = ingest_text(tmp_path, TEXT, faults={"text_embed": {"sleep_first": 60}})
    wait_stage(asset, "text_embed", {"running"}, timeout=90)
    w1.kill(signal.SIGKILL)
    start_worker(name="rabbit-rescuer", concurrency=1, env={"BROKER_URL": amqp_broker})
    wait_status(asset, {"ready", "failed"}, timeout=120, tick=beat)
    run = stage(asset, "text_embed")
    assert (asset.status, run.status, run.attempts) == ("ready", "done", 2)
    from apps.insights.models import TextChunk

    rows = list(TextChunk.objects.filter(asset=asset).values_list("source", "char_start"))
    assert rows and len(rows) == len(set(rows))
