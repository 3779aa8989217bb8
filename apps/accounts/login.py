"""Login attempt limiting for the console and admin sign-in forms.

Failed sign-ins are counted per (username, client address) in Django's cache (Redis, shared by
every web process): after ``MEDIAINTEL_LOGIN_MAX_FAILURES`` failures within
``MEDIAINTEL_LOGIN_WINDOW`` seconds, that username cannot sign in from that address until the
window ends — even with the right password, so guessing gains nothing. A successful sign-in
clears the count. The client address is the one DRF's throttles use (``NUM_PROXIES``).
"""

from __future__ import annotations

import hashlib
import math
import time
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from rest_framework.throttling import BaseThrottle


class LoginThrottle:
    """The failure count of one (username, address) pair."""

    def __init__(self, request: HttpRequest | None, username: str) -> None:
        ident = BaseThrottle().get_ident(request) if request is not None else ""
        raw = f"{username.strip().lower()}|{ident}".encode()
        self.key = "login-fail:" + hashlib.sha256(raw).hexdigest()
        self.window = int(settings.MEDIAINTEL_LOGIN_WINDOW)
        self.limit = int(settings.MEDIAINTEL_LOGIN_MAX_FAILURES)

    def retry_after(self) -> int:
        """Seconds until this pair may try again (0: not locked)."""
        if int(cache.get(self.key, 0)) < self.limit:
            return 0
        start = cache.get(self.key + ":start") or time.time()
        return max(1, math.ceil(start + self.window - time.time()))

    def failed(self) -> None:
        cache.add(self.key + ":start", time.time(), self.window)
        cache.add(self.key, 0, self.window)
        try:
            cache.incr(self.key)
        except ValueError:  # expired between add and incr
            cache.set(self.key, 1, self.window)

    def reset(self) -> None:
        cache.delete_many([self.key, self.key + ":start"])


class ThrottleLoginMixin:
    """Refuse sign-in while the (username, address) pair is locked; count failures."""

    request: HttpRequest | None
    cleaned_data: dict[str, Any]
    too_many = ("Too many failed sign-ins for this account from your address; try again in %(minutes)d "
                "minute(s).")

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username") or ""
        throttle = LoginThrottle(self.request, username) if username else None
        if throttle and (wait := throttle.retry_after()):
            self.locked_for = wait
            raise forms.ValidationError(self.too_many, code="too_many_attempts",
                                        params={"minutes": max(1, math.ceil(wait / 60))})
        try:
            data = super().clean()  # type: ignore[misc]
        except forms.ValidationError as e:
            if throttle and any(getattr(x, "code", "") == "invalid_login" for x in e.error_list):
                throttle.failed()
            raise
        if throttle:
            throttle.reset()
        return data


class ThrottledAuthenticationForm(ThrottleLoginMixin, AuthenticationForm):
    pass


class ThrottledAdminAuthenticationForm(ThrottleLoginMixin, AdminAuthenticationForm):
    pass


class ThrottledLoginView(LoginView):
    """The console sign-in page; a locked pair gets 429 with ``Retry-After``."""

    authentication_form = ThrottledAuthenticationForm

    def form_invalid(self, form: Any) -> HttpResponse:
        resp = super().form_invalid(form)
        wait = getattr(form, "locked_for", 0)
        if wait:
            resp.status_code = 429
            resp["Retry-After"] = str(wait)
        return resp
