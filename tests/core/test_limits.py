"""Limits against the real stack: DRF throttling (per user, anonymous, tighter for search, similar
and uploads) counted in Redis with 429 + Retry-After in the error envelope; sign-in attempts per
(username, address); the total size of a request body (413 before the body is read, over real
HTTP); and the page size of every list (``?limit`` above ``MEDIAINTEL_API_MAX_LIMIT`` is refused)."""

from __future__ import annotations

import json
import socket
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings as dj_settings
from django.test import Client, override_settings
from rest_framework.test import APIClient

from apps.accounts.services import create_token
from tests.moderation.helpers import api, make_asset, make_user

pytestmark = pytest.mark.django_db

LOW = {"anon": "2/min", "user": "5/min", "search": "2/min", "similar": "1/min", "upload": "1/min"}


@pytest.fixture(autouse=True)
def fresh_counters():
    """Throttle and sign-in counters live in the shared cache (Redis): start each test from zero."""
    import redis
    from django.core.cache import cache

    cfg = dj_settings.CACHES["default"]
    if "LOCATION" not in cfg:  # not a shared cache (test_the_cache_is_redis... says so)
        cache.clear()
        yield
        return
    client = redis.Redis.from_url(cfg["LOCATION"])
    for key in client.scan_iter(f"{cfg.get('KEY_PREFIX', '')}*"):
        client.delete(key)
    yield


def low_rates(**rates: str) -> Any:
    return override_settings(REST_FRAMEWORK={**dj_settings.REST_FRAMEWORK,
                                             "DEFAULT_THROTTLE_RATES": {**LOW, **rates}})


def _throttled(r: Any) -> None:
    assert r.status_code == 429, (r.status_code, r.content[:300])
    body = json.loads(r.content)["error"]
    assert body["code"] == "throttled" and "throttled" in body["message"].lower()
    assert int(r["Retry-After"]) > 0


def test_the_cache_is_redis_shared_by_every_process():
    assert dj_settings.CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache"


def test_users_are_throttled_per_user_with_429_json_and_retry_after():
    alice, bob = make_user("alice", "uploader"), make_user("bob", "uploader")
    with low_rates():
        a = api(alice)
        for _ in range(5):
            assert a.get("/api/v1/assets/").status_code == 200
        _throttled(a.get("/api/v1/assets/"))
        assert api(bob).get("/api/v1/assets/").status_code == 200  # counted per user


def test_anonymous_clients_are_throttled_by_address():
    with low_rates():
        anon = APIClient()
        for _ in range(2):
            assert anon.get("/api/schema/?format=json").status_code == 200
        _throttled(anon.get("/api/schema/?format=json"))
        # another address is counted apart
        assert APIClient(REMOTE_ADDR="127.0.0.2").get("/api/schema/?format=json").status_code == 200


def test_a_forged_forwarded_for_header_does_not_reset_the_anonymous_count():
    with low_rates():
        for i in range(2):
            APIClient().get("/api/schema/?format=json", HTTP_X_FORWARDED_FOR=f"10.0.0.{i}")
        _throttled(APIClient().get("/api/schema/?format=json", HTTP_X_FORWARDED_FOR="10.0.0.99"))


def test_search_and_similar_are_throttled_tighter_than_other_requests():
    user = make_user("carol", "uploader")
    c = api(user)
    with low_rates(user="50/min"):
        for _ in range(2):
            assert c.get("/api/v1/search/", {"q": "boats", "mode": "text"}).status_code == 200
        _throttled(c.get("/api/v1/search/", {"q": "boats", "mode": "text"}))
        asset = make_asset(user)
        first = c.post("/api/v1/search/similar/", {"asset_id": str(asset.pk), "mode": "pdq"}, format="json")
        assert first.status_code == 200, first.content
        _throttled(c.post("/api/v1/search/similar/", {"asset_id": str(asset.pk), "mode": "pdq"}, format="json"))
        assert c.get("/api/v1/assets/").status_code == 200  # the general rate still has room


def test_uploads_have_their_own_rate(isolated_storage):
    from django.core.files.uploadedfile import SimpleUploadedFile

    c = api(make_user("dora", "uploader"))
    with low_rates():
        r = c.post("/api/v1/assets/", {"file": SimpleUploadedFile("a.txt", b"first upload text")},
                   format="multipart")
        assert r.status_code in (200, 201), r.content
        _throttled(c.post("/api/v1/assets/", {"file": SimpleUploadedFile("b.txt", b"second upload")},
                          format="multipart"))
        assert c.get("/api/v1/assets/").status_code == 200


# ------------------------------------------------------------------ sign-in attempts
def _login(c: Client, url: str, username: str, password: str) -> Any:
    return c.post(url, {"username": username, "password": password})


@override_settings(MEDIAINTEL_LOGIN_MAX_FAILURES=3, MEDIAINTEL_LOGIN_WINDOW=600)
def test_sign_in_is_locked_after_repeated_failures_for_that_account_and_address():
    from tests.moderation.test_console import PASSWORD
    from tests.moderation.test_console import make_user as console_user

    console_user("mia")
    c = Client()
    for _ in range(3):
        r = _login(c, "/accounts/login/", "mia", "wrong-password")
        assert r.status_code == 200 and "correct username and password" in r.content.decode()
    r = _login(c, "/accounts/login/", "mia", PASSWORD)  # right password, still locked
    assert r.status_code == 429 and int(r["Retry-After"]) > 0
    assert "Too many failed sign-ins" in r.content.decode()
    assert "_auth_user_id" not in c.session
    # the admin sign-in shares the count
    r = _login(Client(), "/admin/login/?next=/admin/", "MIA", PASSWORD)
    assert "Too many failed sign-ins" in r.content.decode()
    # the same account from another address is not locked out; success clears that address's count
    other = Client(REMOTE_ADDR="127.0.0.9")
    assert _login(other, "/accounts/login/", "mia", PASSWORD).status_code == 302
    # a different account from the locked address is not affected
    console_user("noah")
    assert _login(Client(), "/accounts/login/", "noah", PASSWORD).status_code == 302


@override_settings(MEDIAINTEL_LOGIN_MAX_FAILURES=3)
def test_a_successful_sign_in_clears_the_failure_count():
    from tests.moderation.test_console import PASSWORD
    from tests.moderation.test_console import make_user as console_user

    console_user("mia")
    c = Client()
    for _ in range(2):
        _login(c, "/accounts/login/", "mia", "nope")
    assert _login(c, "/accounts/login/", "mia", PASSWORD).status_code == 302
    c.logout()
    for _ in range(2):
        _login(c, "/accounts/login/", "mia", "nope")
    assert _login(c, "/accounts/login/", "mia", PASSWORD).status_code == 302


# ------------------------------------------------------------------ request size
def _raw_post(base: str, path: str, headers: dict[str, str], body_start: bytes) -> tuple[int, dict[str, Any]]:
    """Send the headers and only the first bytes of the body; read the answer (the rest never comes)."""
    u = urlsplit(base)
    with socket.create_connection((u.hostname, u.port), timeout=30) as s:
        head = f"POST {path} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        s.sendall(head.encode() + body_start)
        data = b""
        while True:  # to the end of the answer: its Content-Length, else the server closing
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            length = next((int(x.split(b":", 1)[1]) for x in head.split(b"\r\n")
                           if x.lower().startswith(b"content-length:")), None)
            if length is not None and len(body) >= length:
                break
    status = int(data.split(b" ", 2)[1])
    return status, json.loads(data.partition(b"\r\n\r\n")[2] or b"{}")


def test_a_multipart_body_over_the_total_cap_is_refused_before_it_is_read(live_server, settings):
    settings.MEDIAINTEL_LIMITS = {**settings.MEDIAINTEL_LIMITS, "max_bytes": 1_000_000,
                                  "max_request_bytes": 3_000_000}
    user = make_user("erin", "uploader")
    _, token = create_token(user, actor=None)
    boundary = "----mediaintel-test"
    part = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n"
            "Content-Type: text/plain\r\n\r\n").encode() + b"x" * 1000
    headers = {"Authorization": f"Token {token}", "Content-Type": f"multipart/form-data; boundary={boundary}",
               "Content-Length": str(10 * 1024**3)}  # 10 GiB declared; 1 kB sent
    status, body = _raw_post(live_server.url, "/api/v1/assets/", headers, part)
    assert status == 413 and body["error"]["code"] == "request_too_large"
    assert body["error"]["detail"]["max_request_bytes"] == 3_000_000


def test_many_files_each_under_the_file_limit_cannot_exceed_the_total(settings):
    """Today's per-file cap alone would accept four files of 0.9 MB; the total cap refuses the request."""
    settings.MEDIAINTEL_LIMITS = {**settings.MEDIAINTEL_LIMITS, "max_bytes": 1_000_000,
                                  "max_request_bytes": 3_000_000}
    from django.core.files.uploadedfile import SimpleUploadedFile

    c = api(make_user("finn", "uploader"))
    files = {f"f{i}": SimpleUploadedFile(f"{i}.txt", b"y" * 900_000) for i in range(4)}
    r = c.post("/api/v1/assets/", {"file": SimpleUploadedFile("a.txt", b"hello"), **files}, format="multipart")
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"


# ------------------------------------------------------------------ page size
def test_a_limit_over_the_maximum_page_size_is_refused_naming_the_maximum(settings):
    settings.MEDIAINTEL_API_MAX_LIMIT = 3
    user = make_user("gail", "uploader")
    for _ in range(5):
        make_asset(user)
    r = api(user).get("/api/v1/assets/", {"limit": "10000000"})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid" and "from 1 to 3" in r.json()["error"]["detail"]["limit"][0]
    body = api(user).get("/api/v1/assets/", {"limit": "3"}).json()
    assert body["count"] == 5 and len(body["results"]) == 3 and "limit=3" in body["next"]


def test_every_paginated_list_uses_the_project_pagination():
    """Each list view's paginator is the project's (so ``max_limit`` applies), including the review queue."""
    from rest_framework.settings import api_settings

    from apps.core.pagination import LimitOffsetPagination
    from mediaintel.api import router

    assert api_settings.DEFAULT_PAGINATION_CLASS is LimitOffsetPagination
    for _, viewset, _ in router.registry:
        cls = viewset.pagination_class
        assert cls is None or issubclass(cls, LimitOffsetPagination), viewset
