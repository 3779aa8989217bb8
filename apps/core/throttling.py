"""DRF throttles that read their rates at request time (DRF's own bind them at import, so a
changed ``REST_FRAMEWORK`` setting would be ignored). Counters live in Django's cache, which is
Redis (shared by every web process). Rates: ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]``, from
``MEDIAINTEL_THROTTLE_*`` in settings. A throttled request gets 429 with ``Retry-After`` in the
API's error format."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from rest_framework import throttling
from rest_framework.settings import api_settings


class _RateAtRequestTime:
    scope: str | None

    def get_rate(self) -> str | None:
        if not getattr(self, "scope", None):
            raise ImproperlyConfigured(f"{type(self).__name__} needs a scope")
        try:
            return api_settings.DEFAULT_THROTTLE_RATES[self.scope]
        except KeyError:
            raise ImproperlyConfigured(f"no throttle rate for scope {self.scope!r}") from None


class AnonRateThrottle(_RateAtRequestTime, throttling.AnonRateThrottle):
    """Anonymous clients, per address."""


class UserRateThrottle(_RateAtRequestTime, throttling.UserRateThrottle):
    """Every authenticated user (anonymous clients: per address)."""


class ScopedRateThrottle(_RateAtRequestTime, throttling.ScopedRateThrottle):
    """Views with a ``throttle_scope`` (search, similar, upload) get that scope's tighter rate too."""
