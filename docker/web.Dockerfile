# syntax=docker/dockerfile:1
# MediaIntel web tier: Django + DRF under gunicorn, also used for `migrate` and Celery beat.
# requirements/base.txt only: no torch, no model engines (the web process only *sends* tasks).
# Build from the repository root:  docker build -f docker/web.Dockerfile -t mediaintel/web .
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=mediaintel.settings \
    MEDIAINTEL_ENV=production \
    MEDIAINTEL_VAR=/var/lib/mediaintel \
    MEDIAINTEL_MEDIA_ROOT=/var/lib/mediaintel/media \
    MEDIAINTEL_STATIC_ROOT=/app/staticfiles

# One uid/gid (10001) in every MediaIntel image, so web and workers share the media volume.
RUN groupadd --system --gid 10001 mediaintel \
 && useradd --system --uid 10001 --gid mediaintel --create-home --home-dir /home/mediaintel \
      --shell /usr/sbin/nologin mediaintel

WORKDIR /app
COPY requirements/base.txt requirements/base.txt
RUN pip install -r requirements/base.txt

# Code stays root-owned (read-only to the app user).
COPY . .

# Static files are baked into the image (served by WhiteNoise); the key exists only for this step.
RUN SECRET_KEY=collectstatic-at-build-time-only DEBUG=false \
      python manage.py collectstatic --noinput -v 0 \
 && install -d -o mediaintel -g mediaintel -m 0750 \
      /var/lib/mediaintel /var/lib/mediaintel/media /var/lib/mediaintel/run

USER mediaintel
EXPOSE 8000
# /readyz checks database (pgvector), broker and storage, read-only; 503 when any is down.
# (/livez answers without touching any of them: the liveness probe under Kubernetes.)
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
  CMD ["python", "/app/docker/healthcheck.py"]
# Long timeout: uploads stream through sync workers. Workers: WEB_CONCURRENCY (gunicorn's own env var);
# more options: GUNICORN_CMD_ARGS.
# -c python:mediaintel.gunicorn_conf: Prometheus multiprocess cleanup (PROMETHEUS_MULTIPROC_DIR).
CMD ["gunicorn", "mediaintel.wsgi", "-b", "0.0.0.0:8000", "-c", "python:mediaintel.gunicorn_conf", "--timeout", "600", \
     "--no-control-socket", "--worker-tmp-dir", "/dev/shm", "--access-logfile", "-"]
