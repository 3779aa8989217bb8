"""Webhook delivery: signing, sending with retries, the sweep, manual redelivery.

Deliveries are written to the outbox (``WebhookDelivery``) by :func:`apps.moderation.services.emit`
in the transaction of the event, and sent by the task ``mediaintel.webhooks.deliver`` after it
commits. Each request carries

* ``X-MediaIntel-Event``: the event name (``moderation.decided`` …)
* ``X-MediaIntel-Delivery``: the delivery id (one per subscription and event)
* ``X-MediaIntel-Signature``: ``t=<unix time>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``

A receiver recomputes the HMAC over the raw body with its secret (:func:`verify_signature`),
rejects timestamps too far from now, and de-duplicates on the event ``id`` in the body: a
delivery is at least once. A non-2xx answer, a redirect, a timeout or a connection error is a
failed attempt; attempts back off exponentially with jitter up to
``MEDIAINTEL_WEBHOOK_MAX_ATTEMPTS``, after which the delivery is ``failed`` (an admin may
redeliver it). Only one worker sends a delivery at a time: sending leases it by moving
``next_attempt_at`` past the request timeout with a conditional UPDATE.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import secrets
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.audit.services import Actor, record
from apps.moderation.models import WebhookDelivery

log = logging.getLogger("mediaintel.webhooks")

DELIVER_TASK = "mediaintel.webhooks.deliver"
SIGNATURE_HEADER = "X-MediaIntel-Signature"
EVENT_HEADER = "X-MediaIntel-Event"
DELIVERY_HEADER = "X-MediaIntel-Delivery"
USER_AGENT = "MediaIntel-Webhooks/1"
#: a task may arrive this early (clock skew between hosts) and still send
EARLY = timedelta(seconds=2)


def _conf(name: str, default: float) -> float:
    return float(getattr(settings, name, default))


def max_attempts() -> int:
    return int(_conf("MEDIAINTEL_WEBHOOK_MAX_ATTEMPTS", 8))


def timeout() -> float:
    return _conf("MEDIAINTEL_WEBHOOK_TIMEOUT", 10.0)


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


# ------------------------------------------------------------------ signing
def body_bytes(payload: dict[str, Any]) -> bytes:
    """The exact bytes sent (and signed)."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The signature header value for ``body``: ``t=<unix>,v1=<hex>``."""
    t = int(time.time()) if timestamp is None else int(timestamp)
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify_signature(secret: str, header: str, body: bytes, tolerance: float = 300.0,
                     now: float | None = None) -> bool:
    """What a receiver does: the HMAC matches and the timestamp is within ``tolerance`` seconds."""
    parts: dict[str, list[str]] = {}
    for item in (header or "").split(","):
        k, _, v = item.strip().partition("=")
        parts.setdefault(k, []).append(v)
    try:
        t = int(parts["t"][0])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - t) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, v) for v in parts.get("v1", []))


def backoff(attempt: int) -> float:
    """Seconds before attempt ``attempt + 1``: base·2^(attempt-1), capped, with jitter in [0.5, 1]."""
    base = _conf("MEDIAINTEL_WEBHOOK_BACKOFF", 5.0)
    cap = _conf("MEDIAINTEL_WEBHOOK_BACKOFF_CAP", 3600.0)
    return min(cap, base * 2 ** max(attempt - 1, 0)) * random.uniform(0.5, 1.0)


# ------------------------------------------------------------------ sending
class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an error: the body must not be replayed to, or dropped for, another URL."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect)


@dataclass
class Attempt:
    ok: bool
    status_code: int | None
    error: str


def post(url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> Attempt:
    """One HTTP POST; 2xx is success."""
    req = urllib.request.Request(url, data=body, method="POST",  # noqa: S310 (admin-configured http(s) URLs)
                                 headers={"Content-Type": "application/json", "User-Agent": USER_AGENT, **headers})
    try:
        with _opener.open(req, timeout=timeout_s) as resp:
            code = resp.status
            resp.read(1024)
        return Attempt(200 <= code < 300, code, "" if 200 <= code < 300 else f"HTTP {code}")
    except urllib.error.HTTPError as e:
        try:
            snippet = e.read(500).decode("utf-8", "replace")
        except Exception:
            snippet = ""
        return Attempt(False, e.code, f"HTTP {e.code} {e.reason}: {snippet}".strip()[:2000])
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        return Attempt(False, None, f"{type(e).__name__}: {reason}"[:2000])


def _lease(delivery_id: int, force: bool) -> WebhookDelivery | None:
    """Take the delivery for one send (None when it is not due, already sent, or being sent)."""
    now = timezone.now()
    due = Q(status=WebhookDelivery.Status.PENDING)
    if not force:
        due &= Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now + EARLY)
    n = WebhookDelivery.objects.filter(due, pk=delivery_id).update(
        next_attempt_at=now + timedelta(seconds=timeout() + 30))
    if not n:
        return None
    return WebhookDelivery.objects.select_related("subscription").get(pk=delivery_id)


def deliver(delivery_id: int, *, force: bool = False) -> dict[str, Any]:
    """Send one delivery once (if due); record the attempt; schedule the next one on failure.

    Returns ``{"result": "delivered" | "retrying" | "failed" | "noop", …}``.
    """
    d = _lease(delivery_id, force)
    if d is None:
        return {"result": "noop"}
    sub = d.subscription
    if not sub.enabled:
        WebhookDelivery.objects.filter(pk=d.pk).update(status=WebhookDelivery.Status.FAILED,
                                                       last_error="subscription disabled", next_attempt_at=None)
        return {"result": "failed", "error": "subscription disabled"}
    body = body_bytes(d.payload)
    headers = {SIGNATURE_HEADER: sign(sub.secret, body), EVENT_HEADER: d.event, DELIVERY_HEADER: str(d.pk)}
    t0 = time.perf_counter()
    attempt = post(sub.url, body, headers, timeout())
    seconds = round(time.perf_counter() - t0, 3)
    attempts = d.attempts + 1
    now = timezone.now()
    if attempt.ok:
        WebhookDelivery.objects.filter(pk=d.pk).update(
            status=WebhookDelivery.Status.DELIVERED, attempts=attempts, last_status_code=attempt.status_code,
            last_error="", delivered_at=now, next_attempt_at=None)
        log.info("webhook delivered", extra={"delivery": d.pk, "event": d.event, "status": attempt.status_code,
                                             "attempt": attempts, "seconds": seconds})
        return {"result": "delivered", "status_code": attempt.status_code, "attempts": attempts}
    if attempts >= max_attempts():
        WebhookDelivery.objects.filter(pk=d.pk).update(
            status=WebhookDelivery.Status.FAILED, attempts=attempts, last_status_code=attempt.status_code,
            last_error=attempt.error, next_attempt_at=None)
        log.warning("webhook delivery %s failed for good after %s attempts: %s", d.pk, attempts, attempt.error)
        return {"result": "failed", "status_code": attempt.status_code, "attempts": attempts,
                "error": attempt.error}
    delay = backoff(attempts)
    WebhookDelivery.objects.filter(pk=d.pk).update(
        attempts=attempts, last_status_code=attempt.status_code, last_error=attempt.error,
        next_attempt_at=now + timedelta(seconds=delay))
    log.warning("webhook delivery %s attempt %s failed (%s); retry in %.1fs", d.pk, attempts, attempt.error, delay)
    send(d.pk, countdown=delay)
    return {"result": "retrying", "status_code": attempt.status_code, "attempts": attempts, "delay": delay}


def send(delivery_id: int, countdown: float | None = None) -> bool:
    """Publish the delivery task (False when the broker is unreachable: the sweep sends it later)."""
    from mediaintel.celery import app

    try:
        app.send_task(DELIVER_TASK, args=[delivery_id], queue="moderate", routing_key="moderate",
                      countdown=countdown)
        return True
    except Exception as e:
        log.warning("could not publish webhook delivery %s: %s", delivery_id, e)
        return False


def sweep(batch: int = 500) -> int:
    """Publish due pending deliveries whose message may have been lost (beat).

    A delivery is swept when it has been due for ``MEDIAINTEL_WEBHOOK_SWEEP_GRACE`` seconds;
    its due time moves to now, so a backlog is not published again on every tick.
    """
    now = timezone.now()
    grace = timedelta(seconds=_conf("MEDIAINTEL_WEBHOOK_SWEEP_GRACE", 30.0))
    stale = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now - grace)
    ids = list(WebhookDelivery.objects.filter(stale, status=WebhookDelivery.Status.PENDING)
               .order_by("next_attempt_at", "id").values_list("pk", flat=True)[:batch])
    sent = 0
    for pk in ids:
        if WebhookDelivery.objects.filter(stale, pk=pk, status=WebhookDelivery.Status.PENDING).update(
                next_attempt_at=now):
            sent += send(pk)
    return sent


def redeliver(delivery: WebhookDelivery, user: Any) -> WebhookDelivery:
    """Send a delivery again now with a fresh attempt budget (audited)."""
    before = {"status": delivery.status, "attempts": delivery.attempts,
              "last_status_code": delivery.last_status_code}
    with transaction.atomic():
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=WebhookDelivery.Status.PENDING, attempts=0, next_attempt_at=timezone.now(), last_error="",
            delivered_at=None)
        record("webhook.redelivered", target_type="webhook_delivery", target_id=delivery.pk,
               actor=Actor.user(user), payload={"event": delivery.event, "event_id": str(delivery.event_id),
                                                "before": before})
        pk = delivery.pk
        delivery.refresh_from_db()  # as queued: once committed, a worker may deliver it at any moment
        transaction.on_commit(lambda: send(pk))
    return delivery
