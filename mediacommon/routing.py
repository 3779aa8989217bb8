"""The one routing table: pipeline stage → queue, worker role → queues it consumes.

Which host runs which role is deployment configuration (see docker/compose.yaml and
docs/operations.md), not code. Shared by web (dispatch, backpressure, metrics) and workers (which
queues a role consumes); imports only the standard library. The Celery queue objects are built
from ``QUEUES`` in settings.
"""

from __future__ import annotations

QUEUES: tuple[str, ...] = ("decode", "transcribe", "ocr", "detect", "embed", "moderate", "maintenance", "search",
                           "webhooks")

#: Stage name → queue. Stages are defined in apps.pipeline.plans.
STAGE_QUEUES: dict[str, str] = {
    "probe": "decode",
    "scenes": "decode",
    "keyframes": "decode",
    "audio": "decode",
    "text_extract": "decode",
    "transcribe": "transcribe",
    "ocr": "ocr",
    "detect": "detect",
    "nsfw": "detect",
    "faces": "detect",
    "tags": "embed",
    "hash": "embed",
    "text_embed": "embed",
    "text_flags": "moderate",
    "language": "moderate",
    "moderate": "moderate",
}

#: Queues whose work benefits from a GPU. ``search`` carries interactive work only (a query's
#: vector, an uploaded image's embedding and hash), never pipeline stages, so a worker consuming
#: it alone answers queries at once however deep the pipeline's backlog.
GPU_QUEUES: tuple[str, ...] = ("transcribe", "detect", "embed", "search")

#: Worker role → queues it consumes. ``all`` is the single-host default.
ROLES: dict[str, tuple[str, ...]] = {
    "gpu": GPU_QUEUES,
    "cpu": tuple(q for q in QUEUES if q not in GPU_QUEUES),
    "all": QUEUES,
    "search": ("search",),
}

#: Explicit task name → queue for tasks that are not stages.
TASK_QUEUES: dict[str, str] = {
    "mediaintel.pipeline.run_stage": "decode",  # overridden per message by stage
    "mediaintel.pipeline.release_pending": "maintenance",
    "mediaintel.pipeline.reconcile": "maintenance",
    "mediaintel.pipeline.reap_stalled": "maintenance",
    "mediaintel.maintenance.ping": "maintenance",
    "mediaintel.maintenance.sample_queue_depths": "maintenance",
    "mediaintel.maintenance.sweep_blob_caches": "maintenance",
    # outgoing HTTP only: a slow receiver never delays moderation, and the reverse
    "mediaintel.webhooks.deliver": "webhooks",
    "mediaintel.webhooks.sweep": "maintenance",
    "mediaintel.events.relay": "maintenance",
    "mediaintel.moderation.bank_scan": "maintenance",
}


#: kombu's Redis transport keeps one list per priority step (0, 3, 6, 9): the queue's own name for
#: step 0 and ``<queue>\x06\x16<step>`` for the others. Stage messages carry a priority
#: (``apps.pipeline.priority``), so a stage queue's backlog is the sum of its four lists: depth
#: metrics and autoscaling triggers read all of them.
PRIORITY_STEPS: tuple[int, ...] = (0, 3, 6, 9)


def broker_lists(queue: str) -> tuple[str, ...]:
    """The Redis lists that hold ``queue``'s messages, step 0 first."""
    return tuple(queue if step == 0 else f"{queue}\x06\x16{step}" for step in PRIORITY_STEPS)


def queue_for_stage(stage: str) -> str:
    """Queue a stage runs on; unknown stages are a programming error."""
    try:
        return STAGE_QUEUES[stage]
    except KeyError:
        raise KeyError(f"stage {stage!r} has no queue in mediacommon/routing.py") from None


def queues_for_role(role: str, gpu_workers: bool = False) -> tuple[str, ...]:
    """Queues a worker of ``role`` consumes.

    With no GPU worker in the deployment (``gpu_workers=False``) a ``cpu`` worker
    consumes every queue, so nothing waits for a GPU that does not exist.
    """
    if role not in ROLES:
        raise ValueError(f"unknown worker role {role!r}; choose one of {', '.join(sorted(ROLES))}")
    if role == "cpu" and not gpu_workers:
        return QUEUES
    return ROLES[role]


def task_routes() -> dict[str, dict[str, str]]:
    """Celery ``task_routes`` built from the table."""
    return {name: {"queue": q} for name, q in TASK_QUEUES.items()}
