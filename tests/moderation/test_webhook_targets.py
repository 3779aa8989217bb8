"""Outbound webhook requests: which targets are refused (SSRF), the pinned connection, the total
deadline, and what is stored about an attempt. Real receivers on 127.0.0.1, the real database."""

from __future__ import annotations

import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from apps.audit.models import AuditEvent
from apps.moderation import outbound, webhooks
from apps.moderation.models import WebhookDelivery, WebhookSubscription
from tests.moderation.helpers import Receiver, Trickler, api, header, make_user

#: a public address: only ever stored, never contacted (no worker runs in these tests)
PUBLIC = "https://93.184.215.14/hook"

REFUSED = [
    ("http://127.0.0.1:8080/hook", "loopback"),
    ("http://localhost/hook", "loopback"),
    ("http://[::1]/hook", "loopback"),
    ("http://10.1.2.3/hook", "private"),
    ("http://172.16.0.5/hook", "private"),
    ("http://192.168.1.10/hook", "private"),
    ("http://100.64.0.7/hook", "private"),
    ("http://[fd12:3456::1]/hook", "private"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://[fe80::1]/hook", "link-local"),
    ("http://[::ffff:127.0.0.1]/hook", "loopback"),
    ("http://[::ffff:169.254.169.254]/hook", "link-local"),
    ("http://0.0.0.0/hook", "unspecified"),
    ("http://224.0.0.1/hook", "multicast"),
    ("http://240.0.0.1/hook", "reserved"),
    ("http://198.51.100.7/hook", "reserved"),
]


@pytest.fixture(autouse=True)
def _no_message_outlives_the_test(settings):
    """Messages published here (redelivery, retries) name rows that are rolled back; drop them so
    no later worker ever sees one (they would be no-ops, and some name the public address)."""
    yield
    import redis

    redis.Redis.from_url(settings.BROKER_URL).flushdb()


@pytest.fixture
def admin(db):
    return api(make_user("admin-targets", "admin"))


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


def create(admin, url: str):
    return admin.post("/api/v1/webhooks/", {"url": url, "events": ["moderation.decided"]}, format="json")


def url_problem(resp) -> str:
    body = resp.json()
    assert body["error"]["code"] == "invalid", body
    return " ".join(body["error"]["detail"]["url"])


# ------------------------------------------------------------------ validation at create / update
@pytest.mark.parametrize(("url", "kind"), REFUSED)
def test_create_refuses_internal_targets_naming_the_problem(admin, url, kind):
    r = create(admin, url)
    assert r.status_code == 400, (url, r.status_code)
    assert kind in url_problem(r)
    assert not WebhookSubscription.objects.exists()


def test_create_refuses_non_http_schemes_and_credentials(admin):
    for url in ("ftp://93.184.215.14/x", "file:///etc/passwd", "gopher://93.184.215.14/"):
        assert create(admin, url).status_code == 400, url
    r = create(admin, "https://user:pw@93.184.215.14/hook")
    assert r.status_code == 400 and "credentials" in url_problem(r)
    assert not WebhookSubscription.objects.exists()


def test_create_accepts_a_public_address(admin):
    r = create(admin, PUBLIC)
    assert r.status_code == 201, r.json()
    assert WebhookSubscription.objects.get().url == PUBLIC


def test_update_to_an_internal_target_is_refused_and_leaves_the_url(admin):
    sub = create(admin, PUBLIC).json()
    r = admin.patch(f"/api/v1/webhooks/{sub['id']}/", {"url": "http://169.254.169.254/latest/"}, format="json")
    assert r.status_code == 400 and "link-local" in url_problem(r)
    assert WebhookSubscription.objects.get(pk=sub["id"]).url == PUBLIC


def test_allow_private_admits_loopback_and_private_but_never_link_local(admin, settings):
    settings.MEDIAINTEL_WEBHOOK_ALLOW_PRIVATE = True
    for url in ("http://127.0.0.1:8080/hook", "http://localhost/hook", "http://10.1.2.3/hook",
                "http://[fd12:3456::1]/hook"):
        assert create(admin, url).status_code == 201, url
    for url, kind in (("http://169.254.169.254/latest/meta-data/", "link-local"),
                      ("http://[fe80::1]/hook", "link-local"), ("http://224.0.0.1/hook", "multicast"),
                      ("http://0.0.0.0/hook", "unspecified"), ("http://240.0.0.1/hook", "reserved")):
        r = create(admin, url)
        assert r.status_code == 400 and kind in url_problem(r), url


# ------------------------------------------------------------------ validation at send time
def _delivery(url: str) -> WebhookDelivery:
    sub = WebhookSubscription.objects.create(url=url, secret="whsec_test_secret_0123456789",
                                             events=["review.created"])
    return WebhookDelivery.objects.create(subscription=sub, event="review.created",
                                          event_id="00000000-0000-4000-8000-0000000000aa",
                                          payload={"id": "a", "event": "review.created", "data": {}})


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_send_refuses_a_stored_url_that_resolves_to_loopback(db, receiver, settings, host):
    """A URL stored before the check (or whose DNS changed since) is checked again at send time."""
    settings.MEDIAINTEL_WEBHOOK_MAX_ATTEMPTS = 1
    port = receiver.server.server_address[1]
    d = _delivery(f"http://{host}:{port}/hook")
    assert webhooks.deliver(d.pk)["result"] == "failed"
    assert receiver.requests == []
    d.refresh_from_db()
    assert (d.status, d.attempts, d.last_status_code) == ("failed", 1, None)
    assert d.last_error_kind == "refused_target" and "loopback" in d.last_error


def test_stores_the_status_code_never_the_response_body(db, receiver, settings):
    settings.MEDIAINTEL_WEBHOOK_ALLOW_PRIVATE = True
    settings.MEDIAINTEL_WEBHOOK_MAX_ATTEMPTS = 1
    receiver.default = 500  # answers "receiver says no"
    d = _delivery(receiver.url)
    webhooks.deliver(d.pk)
    assert len(receiver.requests) == 1
    d.refresh_from_db()
    assert (d.status, d.last_status_code, d.last_error_kind) == ("failed", 500, "http_status")
    assert d.last_duration_ms is not None and d.last_duration_ms >= 0
    admin = api(make_user("admin-body", "admin"))
    shown = admin.get(f"/api/v1/webhook-deliveries/{d.pk}/").content.decode()
    assert "receiver says no" not in d.last_error and "receiver says no" not in shown
    failed = AuditEvent.objects.get(verb="webhook.failed", target_id=str(d.pk))
    assert "receiver says no" not in str(failed.payload)


def test_a_redirect_is_not_followed(db, receiver, settings):
    settings.MEDIAINTEL_WEBHOOK_ALLOW_PRIVATE = True
    settings.MEDIAINTEL_WEBHOOK_MAX_ATTEMPTS = 1
    other = Receiver().start()
    try:
        class Redirect(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.send_response(307)
                self.send_header("Location", other.url)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        srv = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        d = _delivery(f"http://127.0.0.1:{srv.server_address[1]}/hook")
        webhooks.deliver(d.pk)
        srv.shutdown()
        srv.server_close()
        d.refresh_from_db()
        assert (d.status, d.last_status_code, d.last_error_kind) == ("failed", 307, "redirect")
        assert other.requests == []
    finally:
        other.stop()


def test_a_delivery_whose_attempts_are_spent_fails_without_sending(db, receiver, settings):
    """The last attempt was taken (counted) but never finished: a worker died mid-send."""
    settings.MEDIAINTEL_WEBHOOK_ALLOW_PRIVATE = True
    settings.MEDIAINTEL_WEBHOOK_MAX_ATTEMPTS = 2
    d = _delivery(receiver.url)
    WebhookDelivery.objects.filter(pk=d.pk).update(attempts=2)
    assert webhooks.deliver(d.pk)["result"] == "failed"
    assert receiver.requests == []
    d.refresh_from_db()
    assert (d.status, d.attempts, d.last_error_kind, d.next_attempt_at) == ("failed", 2, "unfinished", None)
    assert AuditEvent.objects.filter(verb="webhook.failed", target_id=str(d.pk)).count() == 1


# ------------------------------------------------------------------ the total deadline
@pytest.mark.slow
@pytest.mark.parametrize("prefix", [0, 17], ids=["status-line-trickles", "headers-trickle"])
def test_a_trickling_receiver_is_cut_at_the_deadline(db, settings, prefix):
    """One byte every 0.25 s: each read is quick, the whole answer takes ~20 s; the request ends at 1.5 s."""
    settings.MEDIAINTEL_WEBHOOK_ALLOW_PRIVATE = True
    settings.MEDIAINTEL_WEBHOOK_MAX_ATTEMPTS = 1
    settings.MEDIAINTEL_WEBHOOK_TIMEOUT = 1.5
    t = Trickler(prefix=prefix, response=b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Pad: "
                 + b"." * 20 + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").start()
    try:
        d = _delivery(t.url)
        webhooks.deliver(d.pk)
        threading.Event().wait(1.0)  # the receiver notices the closed connection on its next write
        assert t.requests == 1 and t.finished == [False]
        assert t.sent[0] < len(t.response) // 2
        d.refresh_from_db()
        assert (d.status, d.last_status_code) == ("failed", None)
        assert d.last_error_kind == "timeout"
    finally:
        t.stop()


def test_a_2xx_answer_is_delivered_without_waiting_for_a_trickling_body(db, settings):
    settings.MEDIAINTEL_WEBHOOK_ALLOW_PRIVATE = True
    settings.MEDIAINTEL_WEBHOOK_TIMEOUT = 1.5
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 60\r\nConnection: close\r\n\r\n"
    t = Trickler(prefix=len(head), response=head + b"x" * 60).start()
    try:
        d = _delivery(t.url)
        assert webhooks.deliver(d.pk)["result"] == "delivered"
        d.refresh_from_db()
        assert (d.status, d.last_status_code, d.attempts) == ("delivered", 200, 1)
        assert t.finished in ([], [False])  # the body was never waited for
    finally:
        t.stop()


# ------------------------------------------------------------------ the pinned connection
def test_the_connection_goes_to_the_pinned_address_with_the_original_host(receiver):
    """The address validated is the one connected to: the name is never resolved again."""
    port = receiver.server.server_address[1]
    target = outbound.Target(scheme="http", host="hooks.invalid", port=port, path="/hook?x=1",
                             address="127.0.0.1")
    a = outbound.post(target, b"{}", {"X-Test": "1"}, 5.0)
    assert a.ok and a.status_code == 200 and a.error_kind == ""
    assert header(receiver.requests[0], "Host") == f"hooks.invalid:{port}"


def test_check_url_pins_the_address_it_validated(settings):
    t = outbound.check_url("http://localhost:8123/a/b?c=d#frag", allow_private=True)
    assert (t.scheme, t.host, t.port, t.path, t.address) == ("http", "localhost", 8123, "/a/b?c=d", "127.0.0.1")
    with pytest.raises(outbound.RefusedTarget, match="loopback"):
        outbound.check_url("http://localhost:8123/", allow_private=False)


@pytest.fixture(scope="module")
def tls_cert(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
                    "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem")], check=True, capture_output=True)
    return d


def test_https_uses_sni_and_verifies_the_certificate_for_the_host_name(tls_cert):
    """Connected to the pinned IP, TLS still names and verifies the original host."""
    names: list[str | None] = []
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(tls_cert / "cert.pem", tls_cert / "key.pem")
    server_ctx.sni_callback = lambda sock, name, ctx: names.append(name)
    r = Receiver(tls=server_ctx).start()
    client_ctx = ssl.create_default_context(cafile=str(tls_cert / "cert.pem"))
    port = r.server.server_address[1]
    try:
        ok = outbound.post(outbound.Target("https", "localhost", port, "/hook", "127.0.0.1"), b"{}", {}, 5.0,
                           context=client_ctx)
        assert ok.ok and ok.status_code == 200 and len(r.requests) == 1
        bad = outbound.post(outbound.Target("https", "hooks.invalid", port, "/hook", "127.0.0.1"), b"{}", {}, 5.0,
                            context=client_ctx)
        assert not bad.ok and bad.error_kind == "tls" and bad.status_code is None
        assert len(r.requests) == 1  # nothing was sent to a server that could not prove the name
        assert names[:2] == ["localhost", "hooks.invalid"]
    finally:
        r.stop()


# ------------------------------------------------------------------ attempts, leases, time limits
def test_deadline_soft_limit_hard_limit_and_lease_are_ordered():
    """A send is over (by its deadline, or killed by a time limit) before its lease ends."""
    from workers.tasks import webhooks as task

    deadline = webhooks.timeout()
    assert deadline < task.DELIVER_SOFT_TIME_LIMIT < task.DELIVER_TIME_LIMIT < webhooks.lease_seconds()
    assert task.deliver.soft_time_limit == task.DELIVER_SOFT_TIME_LIMIT
    assert task.deliver.time_limit == task.DELIVER_TIME_LIMIT


def test_a_send_interrupted_by_the_time_limit_counts_and_is_retried_then_fails(db, settings):
    """What the task does on SoftTimeLimitExceeded: the attempt taken stays counted; the delivery is
    rescheduled, and once the attempts are spent it is failed and audited."""
    settings.MEDIAINTEL_WEBHOOK_MAX_ATTEMPTS = 2
    settings.MEDIAINTEL_WEBHOOK_BACKOFF = 60
    d = _delivery("https://93.184.215.14/hook")  # never contacted: only taken, then interrupted
    taken, _ = webhooks._take(d.pk)
    assert taken is not None and taken.attempts == 1
    assert webhooks._take(d.pk) == (None, {"result": "noop"})  # leased: nobody else takes it
    webhooks.interrupted(d.pk)
    d.refresh_from_db()
    assert (d.status, d.attempts, d.last_error_kind) == ("pending", 1, "timeout")
    WebhookDelivery.objects.filter(pk=d.pk).update(next_attempt_at=None)  # its retry is due
    assert webhooks._take(d.pk)[0].attempts == 2
    webhooks.interrupted(d.pk)
    d.refresh_from_db()
    assert (d.status, d.attempts, d.last_error_kind, d.next_attempt_at) == ("failed", 2, "timeout", None)
    assert AuditEvent.objects.filter(verb="webhook.failed", target_id=str(d.pk)).count() == 1


def test_migration_rewrites_stored_receiver_answers(transactional_db):
    """Rows written before 0003 held up to 500 bytes of the receiver's answer in last_error."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    executor.migrate([("moderation", "0002_taxonomy_and_default_policy")])
    old = executor.loader.project_state([("moderation", "0002_taxonomy_and_default_policy")]).apps
    Sub, Delivery = old.get_model("moderation", "WebhookSubscription"), old.get_model("moderation", "WebhookDelivery")
    sub = Sub.objects.create(url="https://93.184.215.14/hook", secret="s" * 20, events=["review.created"])
    rows = {}
    for key, code, text in (("body", 500, "HTTP 500 Internal Server Error: internal-host-10.0.0.5 stack trace"),
                            ("moved", 302, "HTTP 302 Found: "), ("ours", None, "URLError: " + "x" * 400),
                            ("ok", 200, "")):
        rows[key] = Delivery.objects.create(subscription=sub, event="review.created",
                                            event_id="00000000-0000-4000-8000-0000000000bb", payload={},
                                            last_status_code=code, last_error=text).pk
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    got = {k: WebhookDelivery.objects.get(pk=pk) for k, pk in rows.items()}
    assert (got["body"].last_error, got["body"].last_error_kind) == ("HTTP 500", "http_status")
    assert (got["moved"].last_error, got["moved"].last_error_kind) == ("HTTP 302", "redirect")
    assert got["ours"].last_error == ("URLError: " + "x" * 400)[:200]
    assert (got["ok"].last_error, got["ok"].last_error_kind) == ("", "")


def test_console_lists_failed_deliveries_for_admins_and_redelivers(db, settings):
    from django.test import Client
    from django.urls import reverse

    settings.MEDIAINTEL_WEBHOOK_MAX_ATTEMPTS = 1
    d = _delivery("https://93.184.215.14/hook")
    WebhookDelivery.objects.filter(pk=d.pk).update(status="failed", attempts=1, last_status_code=503,
                                                   last_error_kind="http_status", last_error="HTTP 503")
    mod, admin = Client(), Client()
    mod.force_login(make_user("mod-console-wh", "moderator"))
    admin.force_login(make_user("admin-console-wh", "admin"))
    assert mod.get(reverse("console-webhooks")).status_code == 403
    page = admin.get(reverse("console-webhooks")).content.decode()
    assert f"<td>{d.pk}</td>" in page and "<b>http_status</b>: HTTP 503" in page
    assert "failed (1)" in page
    assert mod.post(reverse("console-webhook-redeliver", args=[d.pk])).status_code == 403
    r = admin.post(reverse("console-webhook-redeliver", args=[d.pk]))
    assert r.status_code == 302
    d.refresh_from_db()
    assert (d.status, d.attempts) == ("pending", 0)
    assert AuditEvent.objects.filter(verb="webhook.redelivered", target_id=str(d.pk)).count() == 1
    assert f"<td>{d.pk}</td>" not in admin.get(reverse("console-webhooks")).content.decode()
