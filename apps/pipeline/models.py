"""Job, StageRun and DeadLetter: the state of every asset's processing."""

from __future__ import annotations

from django.db import models

from apps.assets.models import MediaAsset
from apps.core.models import UUIDModel


class JobStatus(models.TextChoices):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class StageStatus(models.TextChoices):
    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    RETRYING = "retrying"
    DONE = "done"
    SKIPPED = "skipped"
    FAILED = "failed"
    DEAD = "dead"


#: A stage in one of these lets the stages that need it run.
SATISFIED = (StageStatus.DONE, StageStatus.SKIPPED)
#: Sent, or being worked on.
IN_FLIGHT = (StageStatus.QUEUED, StageStatus.RUNNING, StageStatus.RETRYING)
#: Given up on: the job cannot finish until it is replayed.
BROKEN = (StageStatus.DEAD, StageStatus.FAILED)


class Job(UUIDModel):
    """One pass of the plan over an asset (ingest, or a reprocess request)."""

    asset = models.ForeignKey(MediaAsset, on_delete=models.CASCADE, related_name="jobs")
    plan_version = models.CharField(max_length=40)
    reason = models.CharField(max_length=40, default="ingest")
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.RUNNING, db_index=True)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]


class StageRun(models.Model):
    """One stage of one asset under one engine version; ``key`` makes it exactly-once in effect."""

    id = models.BigAutoField(primary_key=True)
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="stages")
    asset = models.ForeignKey(MediaAsset, on_delete=models.CASCADE, related_name="stage_runs")
    stage = models.CharField(max_length=32)
    needs = models.JSONField(default=list)
    engine = models.CharField(max_length=64)
    engine_version = models.CharField(max_length=128)
    key = models.CharField(max_length=255, unique=True)
    current = models.BooleanField(default=True, help_text="False once superseded by a newer engine version")
    status = models.CharField(max_length=10, choices=StageStatus.choices, default=StageStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField(default=3)
    queue = models.CharField(max_length=20)
    task_id = models.CharField(max_length=64, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error_class = models.CharField(max_length=200, blank=True)
    error_message = models.TextField(blank=True)
    traceback = models.TextField(blank=True)
    skip_reason = models.CharField(max_length=300, blank=True)
    summary = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["status", "queue"]),
            models.Index(fields=["asset", "stage"]),
            models.Index(fields=["status", "heartbeat_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.stage}[{self.status}] {self.asset_id}"

    @property
    def run_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class DeadLetter(models.Model):
    """A stage that exhausted its attempts or failed permanently, kept for ``dlq replay``."""

    id = models.BigAutoField(primary_key=True)
    stage_run = models.ForeignKey(StageRun, on_delete=models.CASCADE, related_name="dead_letters")
    task_name = models.CharField(max_length=200)
    args = models.JSONField(default=list)
    error_class = models.CharField(max_length=200)
    error = models.TextField()
    traceback = models.TextField(blank=True)
    failed_at = models.DateTimeField(auto_now_add=True, db_index=True)
    replayed_at = models.DateTimeField(null=True, blank=True)
    discarded = models.BooleanField(default=False)

    class Meta:
        ordering = ["-failed_at"]

    @property
    def open(self) -> bool:
        return self.replayed_at is None and not self.discarded


class ReconcilerMark(models.Model):
    """When the reconciler last ran (one row): a pass judges leases only if the previous pass
    ran within one lease, i.e. it has been watching (see apps.pipeline.reconcile)."""

    name = models.CharField(max_length=40, primary_key=True)
    last_run_at = models.DateTimeField(null=True, blank=True)


class WorkerPresence(models.Model):
    """A live worker process and the queues it consumes, renewed every few seconds by the worker's
    main process (workers/presence.py): how the system knows a queue has a consumer."""

    name = models.CharField(max_length=200, primary_key=True)  # the Celery node name, e.g. cpu@host
    queues = models.JSONField(default=list)
    pid = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField()
    seen_at = models.DateTimeField(db_index=True)


class EvaluationRun(UUIDModel):
    """One ``manage.py evaluate`` run, kept so the console lists runs and serves their reports.

    ``results`` is the run's ``results.json`` (every number); ``headline`` the few figures the list
    shows; ``report_html`` the self-contained report (inline SVG, no script), served with a CSP that
    allows no script and no network. ``compared_to`` is the earlier run given with ``--compare``,
    when that run was recorded.
    """

    dataset = models.CharField(max_length=200)
    files = models.IntegerField()
    policy = models.CharField(max_length=100, default="default")
    out_dir = models.CharField(max_length=1000)
    engines = models.JSONField(default=dict)
    headline = models.JSONField(default=dict)
    results = models.JSONField()
    report_html = models.TextField()
    compared_to = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-created_at"]
