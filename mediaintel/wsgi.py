"""WSGI entry point (gunicorn mediaintel.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mediaintel.settings")
application = get_wsgi_application()

from django.conf import settings  # noqa: E402  (after the app: settings are loaded)

from mediacommon.tracing import configure  # noqa: E402

configure("mediaintel-web", settings.MEDIAINTEL_OTLP_ENDPOINT, sample_ratio=settings.MEDIAINTEL_TRACE_SAMPLE_RATIO)
