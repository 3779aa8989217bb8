"""docker/compose.yaml agrees with mediacommon/routing.py and with the Dockerfiles it builds."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

from mediacommon import routing

ROOT = Path(__file__).resolve().parent.parent
DOCKER = ROOT / "docker"
COMPOSE = DOCKER / "compose.yaml"
REQUIREMENTS = ROOT / "requirements"
WORKERS = {"worker-cpu": "cpu", "worker-gpu": "gpu"}
APP_SERVICES = ("migrate", "web", "worker-cpu", "worker-gpu", "beat")


def _load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return _load(COMPOSE)


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


def _command(svc: dict[str, Any]) -> list[str]:
    cmd = svc.get("command", [])
    return shlex.split(cmd) if isinstance(cmd, str) else [str(c) for c in cmd]


def _queues(svc: dict[str, Any], label: str = "mediaintel.queues") -> tuple[str, ...]:
    labels = svc.get("labels", {})
    if isinstance(labels, list):  # ["key=value", ...] form
        labels = dict(item.split("=", 1) for item in labels)
    return tuple(q.strip() for q in labels[label].split(",") if q.strip())


def _env(svc: dict[str, Any]) -> dict[str, str]:
    env = svc.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return env


def _uninterpolated(value: str) -> str:
    """``${VAR:?msg}`` / ``${VAR:-default}`` → a placeholder, so the URL can be parsed."""
    return re.sub(r"\$\{[^}]*\}", "placeholder", value)


def _dockerfile(svc: dict[str, Any]) -> Path:
    build = svc["build"]
    if isinstance(build, str):
        return DOCKER / build / "Dockerfile"
    return (DOCKER / build.get("context", ".")) / build.get("dockerfile", "Dockerfile")


def test_services_exist(services: dict[str, Any]) -> None:
    for name in ("postgres", "redis", "migrate", "web", "worker-cpu", "worker-gpu", "beat"):
        assert name in services, name


def test_default_topology_is_cpu_only(services: dict[str, Any]) -> None:
    """Without a profile only worker-cpu runs, so it must consume every queue by default."""
    cpu = services["worker-cpu"]
    assert "profiles" not in cpu
    cmd = _command(cpu)
    assert cmd[:3] == ["python", "-m", "workers"] and cmd[cmd.index("--role") + 1] == "cpu"
    assert _queues(cpu) == routing.queues_for_role("cpu", gpu_workers=False) == routing.QUEUES
    for name in APP_SERVICES:
        assert _env(services[name])["MEDIAINTEL_GPU_WORKERS"] == "${MEDIAINTEL_GPU_WORKERS:-false}", name


def test_gpu_profile_topology_matches_routing(services: dict[str, Any]) -> None:
    """With the gpu profile (and MEDIAINTEL_GPU_WORKERS=true) the two workers split the queues as routing says."""
    cpu, gpu = services["worker-cpu"], services["worker-gpu"]
    assert _queues(cpu, "mediaintel.queues-with-gpu") == routing.queues_for_role("cpu", gpu_workers=True)
    cmd = _command(gpu)
    assert cmd[:3] == ["python", "-m", "workers"] and cmd[cmd.index("--role") + 1] == "gpu"
    assert _queues(gpu) == routing.queues_for_role("gpu", gpu_workers=True)
    assert set(_queues(cpu, "mediaintel.queues-with-gpu")) | set(_queues(gpu)) == set(routing.QUEUES)


def test_worker_dockerfile_defaults_to_its_role(services: dict[str, Any]) -> None:
    for service, role in WORKERS.items():
        text = _instructions(_dockerfile(services[service]))
        assert f'CMD ["python", "-m", "workers", "--role", "{role}"' in text
        assert "requirements/workers.txt" in text


def test_gpu_worker_is_opt_in_and_reserves_one_nvidia_gpu(services: dict[str, Any]) -> None:
    gpu = services["worker-gpu"]
    assert gpu["profiles"] == ["gpu"], "worker-gpu must only start with --profile gpu"
    assert all("profiles" not in svc for name, svc in services.items() if name != "worker-gpu")
    (device,) = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    assert "count" not in device and len(device["device_ids"]) == 1, "one service per GPU"
    cmd = _command(gpu)
    assert cmd[cmd.index("--gpu") + 1] == "0", "the one reserved device is index 0 in the container"
    assert _env(gpu)["MEDIAINTEL_DEVICE"] == "cuda"
    assert "deploy" not in services["worker-cpu"]
    assert _env(services["worker-cpu"])["MEDIAINTEL_DEVICE"] == "cpu"
    text = _instructions(_dockerfile(gpu))
    assert re.search(r"^ARG CUDA_IMAGE=nvidia/cuda:13\.", text, re.M)
    assert "MEDIAINTEL_DEVICE=cuda" in text
    assert "uv python install 3.11" in text


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[name.strip().lower()] = version.strip()
    return pins


def test_gpu_image_installs_onnxruntime_gpu_instead_of_onnxruntime(services: dict[str, Any]) -> None:
    """Both wheels install the `onnxruntime` module: the GPU image must end with the CUDA one only."""
    gpu_pins = _pins(REQUIREMENTS / "gpu.txt")
    assert [n for n in gpu_pins if n.startswith("onnxruntime")] == ["onnxruntime-gpu"]
    assert "onnxruntime" in _pins(REQUIREMENTS / "workers.txt")
    for name in ("base.txt", "workers.txt", "dev.txt"):
        assert "onnxruntime-gpu" not in _pins(REQUIREMENTS / name), name
    text = _instructions(_dockerfile(services["worker-gpu"]))
    order = ("-r requirements/workers.txt", "uninstall --python /opt/venv/bin/python onnxruntime",
             "--no-deps -r requirements/gpu.txt", "CUDAExecutionProvider")
    steps = [text.index(step) for step in order]
    assert steps == sorted(steps), "install workers.txt, remove onnxruntime, add onnxruntime-gpu, check its provider"
    cpu_text = _instructions(_dockerfile(services["worker-cpu"]))
    assert "gpu.txt" not in cpu_text and "onnxruntime-gpu" not in cpu_text


def _cublas_soname_ctranslate2_loads() -> str:
    """The cuBLAS library the installed CTranslate2 opens at run time (``libcublas.so.N``): its
    wheels link the CUDA runtime statically and open cuBLAS by name, so N is the CUDA major it was
    built for, whatever CUDA the host has."""
    import ctranslate2

    assert ctranslate2.__version__ == _pins(REQUIREMENTS / "workers.txt")["ctranslate2"], "test the pinned wheel"
    libs = Path(ctranslate2.__file__).parent.parent / "ctranslate2.libs"
    names = {m.group(0).decode() for lib in libs.glob("libctranslate2*.so*")
             for m in re.finditer(rb"libcublas\.so\.\d+", lib.read_bytes())}
    assert len(names) == 1, names
    return names.pop()


def test_gpu_image_gives_faster_whisper_the_cublas_its_ctranslate2_was_built_for(services: dict[str, Any]) -> None:
    """faster-whisper on CUDA needs the cuBLAS major CTranslate2 was built for. When the image's CUDA
    base is another major, the GPU requirements bring that cuBLAS as a wheel, the image puts it on
    the library path, and the build fails unless it loads (else every GPU worker would transcribe on
    the CPU after one warning)."""
    soname = _cublas_soname_ctranslate2_loads()
    major = soname.rsplit(".", 1)[1]
    dockerfile = _dockerfile(services["worker-gpu"])
    text = _instructions(dockerfile)
    base = re.search(r"ARG CUDA_IMAGE=nvidia/cuda:(\d+)\.", text)
    assert base, "the GPU image's CUDA base is an ARG"
    assert f"ctypes.CDLL('{soname}')" in text, f"the GPU image build checks that {soname} loads"
    if base.group(1) != major:
        assert f"nvidia-cublas-cu{major}" in _pins(REQUIREMENTS / "gpu.txt")
        path = re.search(r"LD_LIBRARY_PATH=(\S+)", text)
        assert path and "/opt/venv/lib/python3.11/site-packages/nvidia/cublas/lib" in path.group(1).split(":")


def _instructions(path: Path) -> str:
    """A Dockerfile without its comment lines (comments may name what is *not* installed)."""
    return "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("#"))


def test_every_build_has_an_existing_dockerfile(services: dict[str, Any]) -> None:
    built = [name for name, svc in services.items() if "build" in svc]
    assert set(APP_SERVICES) <= set(built)
    for name in built:
        svc = services[name]
        assert (DOCKER / svc["build"]["context"]).resolve() == ROOT, name
        assert _dockerfile(svc).is_file(), f"{name}: {_dockerfile(svc)}"
    for name, svc in services.items():
        assert "build" in svc or "image" in svc, name


def test_web_image_has_no_ml_stack(services: dict[str, Any]) -> None:
    for name in ("web", "migrate", "beat"):
        assert _dockerfile(services[name]).name == "web.Dockerfile", name
    text = _instructions(_dockerfile(services["web"]))
    assert "pip install -r requirements/base.txt" in text
    assert "workers.txt" not in text
    assert "torch" not in text
    assert re.search(r'^CMD \["gunicorn", "mediaintel\.wsgi", "-b", "0\.0\.0\.0:8000"', text, re.M)
    assert re.search(r"^HEALTHCHECK .*\n?.*healthcheck\.py", text, re.M)
    assert (DOCKER / "healthcheck.py").is_file()
    assert '"/readyz"' in (DOCKER / "healthcheck.py").read_text()
    assert re.search(r"^USER (?!root)\S+", text, re.M)


def test_env_points_at_compose_services(services: dict[str, Any]) -> None:
    pg_env = services["postgres"]["environment"]
    assert "pgvector" in services["postgres"]["image"]
    assert "redis" in services["redis"]["image"]
    for name in APP_SERVICES:
        env = _env(services[name])
        for key in ("DATABASE_URL", "BROKER_URL", "SECRET_KEY", "MEDIAINTEL_STORAGE", "MEDIAINTEL_GPU_WORKERS"):
            assert key in env, f"{name}: {key}"
        assert all(isinstance(v, str) for v in env.values()), f"{name}: non-string env value"
        db = urlparse(_uninterpolated(env["DATABASE_URL"]))
        assert db.scheme in {"postgres", "postgresql"}
        assert db.hostname == "postgres" and db.hostname in services
        assert db.username == pg_env["POSTGRES_USER"]
        assert db.path.lstrip("/") == pg_env["POSTGRES_DB"]
        broker = urlparse(env["BROKER_URL"])
        assert broker.scheme == "redis" and broker.hostname == "redis" and broker.hostname in services
        assert ":?" in env["SECRET_KEY"], "SECRET_KEY must be required (${SECRET_KEY:?...})"


def test_media_volume_shared_by_web_and_workers(services: dict[str, Any]) -> None:
    media_root = _env(services["web"])["MEDIAINTEL_MEDIA_ROOT"]
    for name in ("web", "worker-cpu", "worker-gpu"):
        assert f"media:{media_root}" in services[name]["volumes"], name


def test_redis_never_evicts(services: dict[str, Any]) -> None:
    cmd = _command(services["redis"])
    assert cmd[cmd.index("--maxmemory-policy") + 1] == "noeviction"
    assert cmd[cmd.index("--appendonly") + 1] == "yes"


def test_app_services_wait_for_migrate(services: dict[str, Any]) -> None:
    for name in ("web", "worker-cpu", "worker-gpu", "beat"):
        dep = services[name]["depends_on"]["migrate"]
        assert dep["condition"] == "service_completed_successfully", name
    assert _command(services["migrate"])[-2:] == ["migrate", "--noinput"]
    assert _command(services["beat"])[:4] == ["celery", "-A", "mediaintel", "beat"]


def test_gpu_settings_are_documented_in_env_example() -> None:
    text = (DOCKER / "env.example").read_text()
    for key in ("COMPOSE_PROFILES=gpu", "MEDIAINTEL_GPU_WORKERS=true", "MEDIAINTEL_GPU_DEVICE="):
        assert key in text, key
