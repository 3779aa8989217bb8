"""Django settings, all from the environment (12-factor).

Unset service URLs fall back to the embedded stack of ``MEDIAINTEL_PROFILE`` (see
``mediaintel.devstack``). The defaults are production ones: ``DEBUG`` off, HTTPS only, and a
``SECRET_KEY`` that must be set. ``MEDIAINTEL_ENV=development`` (what ``make run`` sets) allows
plain HTTP and generates a private secret under ``var/<profile>/``; it does not turn DEBUG on.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from mediacommon import stageconfig
from mediaintel import devstack
from mediaintel.env import dev_secret_key, env_bool, env_float, env_int, env_list, env_str, parse_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
PROFILE = devstack.profile()

MEDIAINTEL_ENV = env_str("MEDIAINTEL_ENV", "production")
if MEDIAINTEL_ENV not in ("production", "development"):
    raise ImproperlyConfigured(f"MEDIAINTEL_ENV must be 'production' (the default) or 'development', "
                               f"not {MEDIAINTEL_ENV!r}")
DEVELOPMENT = MEDIAINTEL_ENV == "development"
DEBUG = env_bool("DEBUG", False)  # tracebacks in pages only when asked for, even in development
SECRET_KEY = env_str("SECRET_KEY").strip()
if not SECRET_KEY and DEVELOPMENT:
    SECRET_KEY = dev_secret_key(env_str("MEDIAINTEL_SECRET_KEY_FILE", str(PROFILE.home / "secret-key")))
if not SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set: the settings are production ones unless "
                               "MEDIAINTEL_ENV=development (which `make run` sets) is given")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "storages",
    "apps.core",
    "apps.accounts",
    "apps.audit",
    "apps.assets",
    "apps.pipeline",
    "apps.insights",
    "apps.moderation",
    "apps.search",
    "apps.events",
]

MIDDLEWARE = [
    "apps.core.tracing.TracingMiddleware",
    "apps.core.middleware.RequestIdMiddleware",
    "apps.core.middleware.RequestSizeLimitMiddleware",
    "apps.core.metrics.MetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "mediaintel.urls"
WSGI_APPLICATION = "mediaintel.wsgi.application"
ASGI_APPLICATION = "mediaintel.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": parse_database_url(env_str("DATABASE_URL", PROFILE.database_url))}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(env_str("MEDIAINTEL_STATIC_ROOT", str(BASE_DIR / "var" / "static")))
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/console/"

# ----------------------------------------------------------------- storage
MEDIA_ROOT = Path(env_str("MEDIAINTEL_MEDIA_ROOT", str(PROFILE.media_root)))
MEDIAINTEL_STORAGE = env_str("MEDIAINTEL_STORAGE", "local")
if MEDIAINTEL_STORAGE == "s3":
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env_str("MEDIAINTEL_S3_BUCKET", "mediaintel"),
            "endpoint_url": env_str("MEDIAINTEL_S3_ENDPOINT") or None,
            "access_key": env_str("MEDIAINTEL_S3_ACCESS_KEY") or None,
            "secret_key": env_str("MEDIAINTEL_S3_SECRET_KEY") or None,
            "region_name": env_str("MEDIAINTEL_S3_REGION", "us-east-1"),
            "addressing_style": env_str("MEDIAINTEL_S3_ADDRESSING", "path"),
            "file_overwrite": False,
            "default_acl": None,
            "querystring_auth": True,
            "max_memory_size": 8 * 1024 * 1024,  # larger downloads spill to a temp file
        },
    }
elif MEDIAINTEL_STORAGE == "local":
    _default_storage = {
        "BACKEND": "apps.assets.storage.DurableFileSystemStorage",
        "OPTIONS": {"location": str(MEDIA_ROOT), "file_permissions_mode": 0o640,
                    "fsync": env_bool("MEDIAINTEL_STORAGE_FSYNC", True)},
    }
else:
    raise RuntimeError(f"MEDIAINTEL_STORAGE must be 'local' or 's3', not {MEDIAINTEL_STORAGE!r}")
STORAGES = {
    "default": _default_storage,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
                    if not DEBUG else "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
FILE_UPLOAD_MAX_MEMORY_SIZE = 0  # every upload streams to a temp file
FILE_UPLOAD_HANDLERS = ["apps.assets.upload.HashingUploadHandler"]
FILE_UPLOAD_TEMP_DIR = env_str("MEDIAINTEL_TMP_DIR") or None
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

# ----------------------------------------------------------------- limits
MEDIAINTEL_LIMITS = {
    "max_bytes": env_int("MEDIAINTEL_MAX_BYTES", 4 * 1024**3),
    "max_duration_s": env_float("MEDIAINTEL_MAX_DURATION", 4 * 3600.0),
    "max_pixels": env_int("MEDIAINTEL_MAX_PIXELS", 80_000_000),
    "max_frames": env_int("MEDIAINTEL_MAX_FRAMES", 4 * 3600 * 60),
    "max_text_bytes": env_int("MEDIAINTEL_MAX_TEXT_BYTES", 20 * 1024 * 1024),
    # the whole request body (all files and fields of a multipart request together)
    "max_request_bytes": env_int("MEDIAINTEL_MAX_REQUEST_BYTES",
                                 env_int("MEDIAINTEL_MAX_BYTES", 4 * 1024**3) + 16 * 1024 * 1024),
    "probe_timeout_s": env_float("MEDIAINTEL_PROBE_TIMEOUT", 30.0),
    "probe_memory_mb": env_int("MEDIAINTEL_PROBE_MEMORY_MB", 1024),
}

MEDIAINTEL_PROBE_PREFORK = env_bool("MEDIAINTEL_PROBE_PREFORK", True)
MEDIAINTEL_API_MAX_LIMIT = env_int("MEDIAINTEL_API_MAX_LIMIT", 500)  # ?limit= above this is refused (400)

# User content served from a separate origin (e.g. https://usercontent.example.net, not a
# subdomain sharing cookies): /api/v1/assets/<id>/content then redirects to a signed URL there.
MEDIAINTEL_CONTENT_ORIGIN = env_str("MEDIAINTEL_CONTENT_ORIGIN", "")
MEDIAINTEL_CONTENT_URL_TTL = env_int("MEDIAINTEL_CONTENT_URL_TTL", 3600)

# ----------------------------------------------------------------- DRF
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.accounts.auth.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["apps.core.filters.ApiFilterBackend", "apps.core.ordering.OrderingFilter"],
    "DEFAULT_PAGINATION_CLASS": "apps.core.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_THROTTLE_CLASSES": ["apps.core.throttling.AnonRateThrottle", "apps.core.throttling.UserRateThrottle",
                                 "apps.core.throttling.ScopedRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env_str("MEDIAINTEL_THROTTLE_ANON", "60/min"),
        "user": env_str("MEDIAINTEL_THROTTLE_USER", "1200/min"),
        # each sends a worker task and holds a web worker while it waits
        "search": env_str("MEDIAINTEL_THROTTLE_SEARCH", "30/min"),
        "similar": env_str("MEDIAINTEL_THROTTLE_SIMILAR", "10/min"),
        "upload": env_str("MEDIAINTEL_THROTTLE_UPLOAD", "600/min"),
    },
    # the client address for throttling: REMOTE_ADDR unless behind that many trusted proxies
    # (then the matching X-Forwarded-For entry); never a header the client alone controls
    "NUM_PROXIES": env_int("MEDIAINTEL_NUM_PROXIES", 0),
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "apps.core.errors.exception_handler",
    # multipart: a body that is not a form is refused, never read as an empty one (apps.core.parsers)
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser", "rest_framework.parsers.FormParser",
                               "apps.core.parsers.MultiPartParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer",
                                 "rest_framework.renderers.BrowsableAPIRenderer"],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "MediaIntel API",
    "DESCRIPTION": "Ingest media, follow its analysis pipeline, review moderation, search the library.",
    "VERSION": "1",
    "OAS_VERSION": "3.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "apps.core.schema.error_responses",
                            "apps.moderation.schema.add_webhooks"],
    "ENUM_NAME_OVERRIDES": {
        "AssetStatusEnum": "apps.assets.models.Status",
        "StageStatusEnum": "apps.pipeline.models.StageStatus",
        "JobStatusEnum": "apps.pipeline.models.JobStatus",
        "ReviewStateEnum": "apps.moderation.models.ReviewState",
        "AppealStateEnum": "apps.moderation.models.AppealState",
        "WebhookDeliveryStatusEnum": "apps.moderation.models.WebhookDelivery.Status",
        "HashBankKindEnum": "apps.moderation.models.HashBank.Kind",
        "AssetKindEnum": "apps.assets.models.Kind",
    },
}

# API tokens (apps.accounts): stored as SHA-256 digests, shown once, expiring
MEDIAINTEL_TOKEN_LIFETIME_DAYS = env_int("MEDIAINTEL_TOKEN_LIFETIME_DAYS", 90)
MEDIAINTEL_TOKEN_MAX_DAYS = env_int("MEDIAINTEL_TOKEN_MAX_DAYS", 366)
# console/admin sign-in: failures counted per (username, client address) in the cache
MEDIAINTEL_LOGIN_MAX_FAILURES = env_int("MEDIAINTEL_LOGIN_MAX_FAILURES", 5)
MEDIAINTEL_LOGIN_WINDOW = env_int("MEDIAINTEL_LOGIN_WINDOW", 900)

# ----------------------------------------------------------------- Celery
BROKER_URL = env_str("BROKER_URL", env_str("REDIS_URL", PROFILE.broker_url))
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", "") or None
# Search's Redis (query-vector replies and cache): REDIS_URL, else the broker when it is Redis
# (redis://, rediss://, unix://, or kombu's sentinel://), else none (search degrades, saying so).
REDIS_URL = env_str("REDIS_URL", BROKER_URL if BROKER_URL.startswith(("redis", "unix://", "sentinel://")) else "")
# Sentinel URLs (broker or REDIS_URL): the monitored master's name.
REDIS_SENTINEL_MASTER = env_str("MEDIAINTEL_REDIS_SENTINEL_MASTER", "mymaster")
# one cache shared by every web process (throttle and sign-in counters must be)
# (without any Redis — RabbitMQ broker, no REDIS_URL — each process counts on its own: documented)
_CACHE_URL = env_str("MEDIAINTEL_CACHE_URL", REDIS_URL if REDIS_URL.startswith("redis") else "")
CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": _CACHE_URL,
                      "KEY_PREFIX": "mediaintel-cache"} if _CACHE_URL else
          {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
MEDIAINTEL_GPU_WORKERS = env_bool("MEDIAINTEL_GPU_WORKERS", False)
#: Device the worker's models are asked to use: auto (CUDA when the engine's runtime can use it), cpu,
#: or cuda (CPU with one warning per engine where CUDA is unusable: workers/engines/device.py).
MEDIAINTEL_DEVICE = env_str("MEDIAINTEL_DEVICE", "auto").strip().lower() or "auto"
if MEDIAINTEL_DEVICE not in ("auto", "cpu", "cuda"):
    raise ImproperlyConfigured(f"MEDIAINTEL_DEVICE must be auto, cpu or cuda, not {MEDIAINTEL_DEVICE!r}")
#: CPU threads of the transcription engine in a worker child; 0: the child's share of the cores
#: (MEDIAINTEL_THREADS_PER_CHILD). More threads than the share oversubscribe the host when several
#: children transcribe at once (measured: workers/process.py, docs/benchmarks.md).
MEDIAINTEL_TRANSCRIBE_THREADS = env_int("MEDIAINTEL_TRANSCRIBE_THREADS", 0)
if MEDIAINTEL_TRANSCRIBE_THREADS < 0:
    raise ImproperlyConfigured("MEDIAINTEL_TRANSCRIBE_THREADS must be 0 (the child's share) or more")
#: Confidence (0..1) a face needs to be stored by the faces stage (workers/engines/faces.py). The
#: engine version (mediacommon/catalog.py) follows it: changing it makes face results stale.
MEDIAINTEL_FACE_THRESHOLD = env_float("MEDIAINTEL_FACE_THRESHOLD", 0.5)
if not 0.0 <= MEDIAINTEL_FACE_THRESHOLD <= 1.0:
    raise ImproperlyConfigured(f"MEDIAINTEL_FACE_THRESHOLD must be within 0..1, not {MEDIAINTEL_FACE_THRESHOLD}")

#: Every stage's configuration, one frozen object per stage (mediacommon/stageconfig.py): the version
#: catalog (mediacommon/catalog.py) and the engines the workers load both read this object, so the
#: weights a version names are the weights that run. Variables and defaults: docs/models.md.
_scene_threshold = env_str("MEDIAINTEL_SCENE_THRESHOLD", "").strip()
try:
    MEDIAINTEL_STAGES = stageconfig.StageConfigs(
        scenes=stageconfig.ScenesConfig(detector=env_str("MEDIAINTEL_SCENE_DETECTOR", "content") or "content",
                                        threshold=float(_scene_threshold) if _scene_threshold else None),
        keyframes=stageconfig.KeyframesConfig(max_interval=env_float("MEDIAINTEL_KEYFRAME_INTERVAL", 10.0)),
        transcribe=stageconfig.TranscribeConfig(
            backend=env_str("MEDIAINTEL_WHISPER_BACKEND", "faster-whisper") or "faster-whisper",
            model=env_str("MEDIAINTEL_WHISPER_MODEL", "base") or "base",
            weights=env_str("MEDIAINTEL_WHISPER_WEIGHTS", ""), device=MEDIAINTEL_DEVICE,
            threads=MEDIAINTEL_TRANSCRIBE_THREADS),
        ocr=stageconfig.OcrConfig(lang=env_str("MEDIAINTEL_OCR_LANG", "eng") or "eng",
                                  engine=(env_str("MEDIAINTEL_OCR_ENGINE", "tesserocr") or "tesserocr").lower(),
                                  device=MEDIAINTEL_DEVICE),
        detect=stageconfig.DetectConfig(nudity_weights=env_str("MEDIAINTEL_NUDITY_WEIGHTS", ""),
                                        objects_weights=env_str("MEDIAINTEL_DETECT_WEIGHTS", ""),
                                        device=MEDIAINTEL_DEVICE),
        nsfw=stageconfig.NsfwConfig(weights=env_str("MEDIAINTEL_NSFW_WEIGHTS", ""), device=MEDIAINTEL_DEVICE),
        faces=stageconfig.FacesConfig(threshold=MEDIAINTEL_FACE_THRESHOLD),
        tags=stageconfig.TagsConfig(weights=env_str("MEDIAINTEL_IMAGE_EMBED_WEIGHTS", ""),
                                    model=env_str("MEDIAINTEL_IMAGE_EMBED_MODEL", ""),
                                    clip_model=env_str("MEDIAINTEL_CLIP_MODEL", ""),
                                    clip_weights=env_str("MEDIAINTEL_CLIP_WEIGHTS", ""), device=MEDIAINTEL_DEVICE,
                                    backend=(env_str("MEDIAINTEL_IMAGE_EMBED_BACKEND", "onnx") or "onnx").lower()),
        text_embed=stageconfig.TextEmbedConfig(
            weights=env_str("MEDIAINTEL_TEXT_EMBED_WEIGHTS", ""), device=MEDIAINTEL_DEVICE,
            batch_size=env_int("MEDIAINTEL_TEXT_EMBED_BATCH", 64),
            backend=env_str("MEDIAINTEL_TEXT_EMBED_BACKEND", "onnx") or "onnx",
            query_backend=env_str("MEDIAINTEL_TEXT_EMBED_QUERY_BACKEND", "onnx") or "onnx"),
        text_flags=stageconfig.TextFlagsConfig(
            lexicon_paths=tuple(p for p in env_str("MEDIAINTEL_LEXICON_PATH", "").split(os.pathsep) if p)),
        model_cache=env_str("MEDIAINTEL_MODEL_CACHE", ""),
    )
except ValueError as e:
    raise ImproperlyConfigured(f"stage configuration: {e}") from None

# ----------------------------------------------------------------- security (HTTPS unless development)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEVELOPMENT)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEVELOPMENT)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEVELOPMENT)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEVELOPMENT else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEVELOPMENT
SECURE_HSTS_PRELOAD = not DEVELOPMENT
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Probes and scrapes come over plain HTTP from inside the cluster/host, never through the TLS proxy.
SECURE_REDIRECT_EXEMPT = [r"^livez$", r"^readyz$", r"^healthz$", r"^metrics$"]
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# ----------------------------------------------------------------- logging
LOG_FORMAT = env_str("MEDIAINTEL_LOG_FORMAT", "text" if DEBUG or DEVELOPMENT else "json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "apps.core.logging.ContextFilter"}},
    "formatters": {
        "json": {"()": "pythonjsonlogger.json.JsonFormatter",
                 "format": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(task_id)s "
                           "%(trace_id)s %(span_id)s",
                 "rename_fields": {"asctime": "time", "levelname": "level"}},
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s%(task_id)s] %(message)s"
                           "%(trace_suffix)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["context"]}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}, "celery": {"level": "INFO"}},
}

# ----------------------------------------------------------------- metrics and tracing
# Prometheus multiprocess mode (mediacommon/metrics.py): the directory every gunicorn worker and
# Celery pool child of one host/pod writes its samples to; prometheus_client itself reads the
# variable at import. Empty: per-process metrics (tests, a shell).
PROMETHEUS_MULTIPROC_DIR = env_str("PROMETHEUS_MULTIPROC_DIR", "")
# A worker's main process serves its pool children's metrics on this port (0: off; the supervisor
# shares one directory with the web instead, whose /metrics then shows the workers' too).
MEDIAINTEL_WORKER_METRICS_PORT = env_int("MEDIAINTEL_WORKER_METRICS_PORT", 0)
# OpenTelemetry traces over OTLP/HTTP (mediacommon/tracing.py), e.g.
# http://otel-collector:4318/v1/traces. Empty (default): tracing off.
MEDIAINTEL_OTLP_ENDPOINT = env_str("MEDIAINTEL_OTLP_ENDPOINT", "")
MEDIAINTEL_TRACE_SAMPLE_RATIO = env_float("MEDIAINTEL_TRACE_SAMPLE_RATIO", 1.0)
if not 0.0 <= MEDIAINTEL_TRACE_SAMPLE_RATIO <= 1.0:
    raise ImproperlyConfigured("MEDIAINTEL_TRACE_SAMPLE_RATIO must be between 0 and 1")

# ----------------------------------------------------------------- Celery (CELERY_* → app.conf)
# Redelivery: tasks are acknowledged after they finish (acks_late) and rejected back to the
# queue when their worker process dies (reject_on_worker_lost). With Redis an unacknowledged
# message becomes visible again only after ``visibility_timeout``: it is set longer than the
# longest hard time limit so a slow task is never delivered twice, and the restore sweep runs
# every 5 s (interval 5 × throttle 1) instead of kombu's ~100 s. A worker killed outright is
# recovered sooner by the pipeline's own lease: running stages heartbeat, and the reconciler
# (beat, every 5 s; apps/pipeline/reconcile.py) re-dispatches stages whose heartbeat stopped for
# ``MEDIAINTEL_STAGE_LEASE`` seconds and re-sends lost messages; the original message, restored
# later, is then a no-op.
from kombu import Queue  # noqa: E402

from mediacommon import routing  # noqa: E402  (stdlib-only module)

MEDIAINTEL_MAX_HARD_TIME_LIMIT = env_int("MEDIAINTEL_MAX_HARD_TIME_LIMIT", 2 * 3600)
MEDIAINTEL_STAGE_LEASE = env_float("MEDIAINTEL_STAGE_LEASE", 15.0)
# A stage ``queued`` this long while its broker queue is empty lost its message: the reconciler re-sends it.
MEDIAINTEL_STAGE_REDISPATCH_AFTER = env_float("MEDIAINTEL_STAGE_REDISPATCH_AFTER", 30.0)
# A stage task that cannot reach the database waits for it this long (holding its message, its
# attempt not counted), then gives the message back to the queue.
MEDIAINTEL_INFRA_WAIT = env_float("MEDIAINTEL_INFRA_WAIT", 120.0)
# Each worker's main process renews its presence row (the queues it consumes) this often.
MEDIAINTEL_WORKER_PRESENCE_INTERVAL = env_float("MEDIAINTEL_WORKER_PRESENCE_INTERVAL", 10.0)
MEDIAINTEL_QUEUE_LIMITS = {q: env_int(f"MEDIAINTEL_QUEUE_LIMIT_{q.upper()}", 500) for q in routing.QUEUES}
CELERY_BROKER_URL = BROKER_URL
CELERY_RESULT_BACKEND = CELERY_RESULT_BACKEND
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery's monitoring events (for Flower / ``celery events``) cost extra broker publishes per
# task; the pipeline's own StageRun rows and /metrics already record every stage: opt in.
MEDIAINTEL_TASK_EVENTS = env_bool("MEDIAINTEL_TASK_EVENTS", False)
CELERY_WORKER_SEND_TASK_EVENTS = MEDIAINTEL_TASK_EVENTS
CELERY_TASK_SEND_SENT_EVENT = MEDIAINTEL_TASK_EVENTS
CELERY_TASK_TIME_LIMIT = MEDIAINTEL_MAX_HARD_TIME_LIMIT
CELERY_TASK_SOFT_TIME_LIMIT = MEDIAINTEL_MAX_HARD_TIME_LIMIT - 60
CELERY_TASK_DEFAULT_QUEUE = "maintenance"
CELERY_TASK_QUEUES = [Queue(q, routing_key=q) for q in routing.QUEUES]  # one durable direct queue each
CELERY_TASK_ROUTES = routing.task_routes()
CELERY_TASK_CREATE_MISSING_QUEUES = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": int(MEDIAINTEL_MAX_HARD_TIME_LIMIT * 1.5),
    "unacked_restore_interval": 5,
    "unacked_restore_throttle": 1,
    "socket_timeout": 30,
    "socket_connect_timeout": 5,
    "health_check_interval": 10,
    **({"master_name": REDIS_SENTINEL_MASTER} if BROKER_URL.startswith("sentinel://") else {}),
}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Celery's Django fixup closes every database connection before and after each task unless this
# is set (a reconnect and cold backend caches: ~6 ms per stage). Tasks call Django's
# ``close_old_connections`` themselves, which keeps CONN_MAX_AGE and drops broken connections.
CELERY_DB_REUSE_MAX = env_int("MEDIAINTEL_DB_REUSE_MAX", 1000)
# A pool child reports "up" after worker_process_init, where engines may be preloaded (tens of
# seconds): without this a replacement child (after a crash or hard time limit) is killed forever.
# Engines named in MEDIAINTEL_PRELOAD are loaded once in the worker's main process before it forks
# its pool, so the children share their pages copy-on-write (workers/process.py); off: each child
# loads its own copy.
MEDIAINTEL_SHARED_MODELS = env_bool("MEDIAINTEL_SHARED_MODELS", True)
#: Engines a worker loads at start: "" (none), "all", "role" (those of its queues) or a comma list
#: (workers/process.py); ``python -m workers --role search`` defaults it to the query embedder.
MEDIAINTEL_PRELOAD = env_str("MEDIAINTEL_PRELOAD", "").strip()
#: The worker's role, as ``python -m workers --role`` sets it for its pool children.
MEDIAINTEL_WORKER_ROLE = env_str("MEDIAINTEL_WORKER_ROLE", "all")
#: Benchmarks of orchestration alone run every stage as a no-op (never set in production).
MEDIAINTEL_NOOP_STAGES = env_bool("MEDIAINTEL_NOOP_STAGES", False)
#: Chaos hook of the reliability tests (workers/base.py); never set in production.
MEDIAINTEL_FAULT_INJECTION = env_bool("MEDIAINTEL_FAULT_INJECTION", False)
CELERY_WORKER_PROC_ALIVE_TIMEOUT = env_float("MEDIAINTEL_CHILD_START_TIMEOUT", 180.0)
CELERY_IMPORTS = [f"workers.tasks.{m}" for m in ("maintenance", "decode", "transcribe", "ocr", "detect", "faces",
                                                 "embed", "moderate", "search", "webhooks", "events")]
MEDIAINTEL_WORKER_CACHE = env_str("MEDIAINTEL_WORKER_CACHE", str(PROFILE.home / "worker-cache"))
# One beat at a time: beat sends the schedule only while it holds a lease in Redis (REDIS_URL)
# of this many seconds; a standby beat takes over about this long after the holder died, at once
# after a clean stop (mediaintel/beat.py).
MEDIAINTEL_BEAT_LOCK_TTL = env_float("MEDIAINTEL_BEAT_LOCK_TTL", 30.0)
CELERY_BEAT_SCHEDULER = "mediaintel.beat:LockedScheduler"
# Local copies of remote (S3) originals on each worker host (workers/blobcache.py): LRU-bounded.
MEDIAINTEL_WORKER_CACHE_MAX_BYTES = env_int("MEDIAINTEL_WORKER_CACHE_MAX_BYTES", 20 * 1024**3)
MEDIAINTEL_WORKER_CACHE_MAX_AGE = env_float("MEDIAINTEL_WORKER_CACHE_MAX_AGE", 24 * 3600.0)
MEDIAINTEL_WORKER_CACHE_SWEEP = env_float("MEDIAINTEL_WORKER_CACHE_SWEEP", 300.0)
# Domain events (apps/events, workers/eventbus; docs/events.md): the outbox is relayed to the bus
# named here — "redis" (Redis Streams on MEDIAINTEL_EVENTS_REDIS_URL, default REDIS_URL), "nats"
# (JetStream), "kafka" or "none" — every RELAY_INTERVAL s, RELAY_BATCH events per pass. STREAM is the
# Redis stream key, the NATS subject prefix and the Kafka topic. Relayed rows are kept for
# OUTBOX_RETENTION s.
MEDIAINTEL_EVENTS_BUS = env_str("MEDIAINTEL_EVENTS_BUS", "redis")
MEDIAINTEL_EVENTS_STREAM = env_str("MEDIAINTEL_EVENTS_STREAM", "mediaintel.events")
MEDIAINTEL_EVENTS_RELAY_INTERVAL = env_float("MEDIAINTEL_EVENTS_RELAY_INTERVAL", 1.0)
MEDIAINTEL_EVENTS_RELAY_BATCH = env_int("MEDIAINTEL_EVENTS_RELAY_BATCH", 500)
MEDIAINTEL_EVENTS_OUTBOX_RETENTION = env_float("MEDIAINTEL_EVENTS_OUTBOX_RETENTION", 7 * 86400.0)
MEDIAINTEL_EVENTS_REDIS_URL = env_str("MEDIAINTEL_EVENTS_REDIS_URL") or REDIS_URL  # Secret: may hold a password
MEDIAINTEL_EVENTS_REDIS_MAXLEN = env_int("MEDIAINTEL_EVENTS_REDIS_MAXLEN", 1_000_000)  # approximate XADD MAXLEN
MEDIAINTEL_EVENTS_NATS_URL = env_str("MEDIAINTEL_EVENTS_NATS_URL") or "nats://127.0.0.1:4222"  # Secret
MEDIAINTEL_EVENTS_NATS_MAX_AGE = env_float("MEDIAINTEL_EVENTS_NATS_MAX_AGE", 7 * 86400.0)  # stream retention, s
MEDIAINTEL_EVENTS_KAFKA_BOOTSTRAP = env_str("MEDIAINTEL_EVENTS_KAFKA_BOOTSTRAP", "")
try:  # extra librdkafka client settings (SASL, TLS) as a JSON object (Secret)
    MEDIAINTEL_EVENTS_KAFKA_CONFIG = json.loads(env_str("MEDIAINTEL_EVENTS_KAFKA_CONFIG", "{}") or "{}")
except ValueError as e:
    raise ImproperlyConfigured(f"MEDIAINTEL_EVENTS_KAFKA_CONFIG must be a JSON object: {e}") from None
if MEDIAINTEL_EVENTS_BUS not in ("redis", "nats", "kafka", "none"):
    raise ImproperlyConfigured("MEDIAINTEL_EVENTS_BUS must be redis, nats, kafka or none, "
                               f"not {MEDIAINTEL_EVENTS_BUS!r}")
if MEDIAINTEL_EVENTS_BUS == "kafka" and not MEDIAINTEL_EVENTS_KAFKA_BOOTSTRAP:
    raise ImproperlyConfigured("MEDIAINTEL_EVENTS_BUS=kafka needs MEDIAINTEL_EVENTS_KAFKA_BOOTSTRAP (host:port,...)")
# Each beat message expires when the next one is due, so ticks never pile up while workers are
# down (a worker would discard them anyway as stale). Expiry is absolute: hosts need synced clocks.
CELERY_BEAT_SCHEDULE = {
    name: {"task": task, "schedule": every, "options": {"expires": every}}
    for name, task, every in (
        ("release-pending", "mediaintel.pipeline.release_pending", 2.0),
        ("reconcile", "mediaintel.pipeline.reconcile", 5.0),
        ("sample-queue-depths", "mediaintel.maintenance.sample_queue_depths", 15.0),
        ("webhook-sweep", "mediaintel.webhooks.sweep", 15.0),
        ("relay-events", "mediaintel.events.relay", MEDIAINTEL_EVENTS_RELAY_INTERVAL),
        ("sweep-blob-caches", "mediaintel.maintenance.sweep_blob_caches", MEDIAINTEL_WORKER_CACHE_SWEEP),
    )
}
MEDIAINTEL_MAX_BACKLOG = env_int("MEDIAINTEL_MAX_BACKLOG", 20000)
MEDIAINTEL_REVIEW_CLAIM_TTL = env_float("MEDIAINTEL_REVIEW_CLAIM_TTL", 900.0)
MEDIAINTEL_WEBHOOK_MAX_ATTEMPTS = env_int("MEDIAINTEL_WEBHOOK_MAX_ATTEMPTS", 8)
MEDIAINTEL_WEBHOOK_BACKOFF = env_float("MEDIAINTEL_WEBHOOK_BACKOFF", 5.0)  # seconds, doubled per attempt (+jitter)
MEDIAINTEL_WEBHOOK_TIMEOUT = env_float("MEDIAINTEL_WEBHOOK_TIMEOUT", 10.0)  # total per request (DNS to headers)
# Receivers on loopback/private addresses (on-premises); link-local/metadata is refused regardless.
MEDIAINTEL_WEBHOOK_ALLOW_PRIVATE = env_bool("MEDIAINTEL_WEBHOOK_ALLOW_PRIVATE", False)
MEDIAINTEL_WEBHOOK_SWEEP_GRACE = env_float("MEDIAINTEL_WEBHOOK_SWEEP_GRACE", 30.0)
