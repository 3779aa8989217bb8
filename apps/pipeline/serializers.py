"""API representations of jobs, stage runs and dead letters."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from apps.pipeline.models import DeadLetter, Job, StageRun


class StageRunSerializer(serializers.ModelSerializer):
    run_seconds = serializers.FloatField(read_only=True)

    class Meta:
        model = StageRun
        fields = ["id", "stage", "status", "attempts", "max_attempts", "engine", "engine_version", "queue",
                  "worker", "queued_at", "started_at", "finished_at", "run_seconds", "error_class",
                  "error_message", "skip_reason", "summary"]
        read_only_fields = fields


def stages_of(asset: Any) -> list[dict[str, Any]]:
    runs = StageRun.objects.filter(asset=asset, current=True).order_by("id")
    return StageRunSerializer(runs, many=True).data


class JobSerializer(serializers.ModelSerializer):
    stages = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = ["id", "asset", "plan_version", "reason", "status", "started_at", "finished_at", "stages"]
        read_only_fields = fields

    def get_stages(self, job: Job) -> list[dict[str, Any]]:
        return StageRunSerializer(job.stages.all().order_by("id"), many=True).data


class DeadLetterSerializer(serializers.ModelSerializer):
    stage = serializers.CharField(source="stage_run.stage", read_only=True)
    asset = serializers.UUIDField(source="stage_run.asset_id", read_only=True)

    class Meta:
        model = DeadLetter
        fields = ["id", "stage", "asset", "task_name", "args", "error_class", "error", "traceback", "failed_at",
                  "replayed_at", "discarded"]
        read_only_fields = fields


def _stage_names() -> list[str]:
    from apps.pipeline.plans import PLANS

    return sorted({stage.name for plan in PLANS.values() for stage in plan})


class ReprocessSerializer(serializers.Serializer):
    """Which stages to run again; a stage outside the asset's plan (``transcribe`` for an image) is
    a 409 ``unknown_stage`` from the view, since whether it fits depends on the asset's kind."""

    stages = serializers.ListField(child=serializers.ChoiceField(choices=_stage_names()), required=False,
                                   allow_empty=True, help_text="Only these stages (default: every stage `mode` "
                                                               "selects)")
    mode = serializers.ChoiceField(choices=["missing", "stale", "failed", "all"], default="stale")


class ReprocessResultSerializer(serializers.Serializer):
    started = serializers.BooleanField(help_text="Whether a job was started")
    stages = serializers.ListField(child=serializers.CharField(), help_text="The stages that will run again")
    detail = serializers.CharField(required=False, help_text="Why nothing runs (only when `started` is false)")


class DeadLetterReplayedSerializer(DeadLetterSerializer):
    """The dead letter after a replay was sent."""

    replayed = serializers.BooleanField(help_text="Always true: the stage was sent again")

    class Meta(DeadLetterSerializer.Meta):
        fields = [*DeadLetterSerializer.Meta.fields, "replayed"]
