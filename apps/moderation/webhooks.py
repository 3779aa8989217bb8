"""Webhook delivery: subscriptions, signing, sending with retries, the sweep, manual redelivery.

Deliveries are written to the outbox (``WebhookDelivery``) by :func:`apps.moderation.services.emit`
in the transaction of the event, and sent by the task ``mediaintel.webhooks.deliver`` (queue
``webhooks``) after it commits. Each request carries

* ``X-MediaIntel-Event``: the event name (``moderation.decided`` …)
* ``X-MediaIntel-Delivery``: the delivery id (one per subscription and event)
* ``X-MediaIntel-Signature``: ``t=<unix time>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``

A receiver recomputes the HMAC over the raw body with its secret (:func:`verify_signature`),
rejects timestamps too far from now, and de-duplicates on the event ``id`` in the body: a
delivery is at least once.

Invariants:

* Targets: a subscription's URL is checked when it is created or changed, and again before
  every send (DNS may have changed); the request goes to the address checked
  (:mod:`apps.moderation.outbound`). Loopback/private receivers need
  ``MEDIAINTEL_WEBHOOK_ALLOW_PRIVATE``; link-local (cloud metadata) never passes.
* One send at a time: a send begins by *taking* the delivery with one conditional UPDATE that
  counts the attempt and moves ``next_attempt_at`` to the end of its lease. The lease
  (:func:`lease_seconds`) outlives the request's deadline and the task's hard time limit, so
  neither a duplicate message nor the sweep can start a second send while one may still run.
* Every attempt counts, finished or not (a killed worker, a time limit): after
  ``MEDIAINTEL_WEBHOOK_MAX_ATTEMPTS`` the delivery is ``failed``, with an audit record
  ``webhook.failed``; an admin may redeliver it. A non-2xx answer, a redirect, a timeout, a
  refused target or a connection error is a failed attempt; attempts back off exponentially
  with jitter.
* The outcome of an attempt is written only by the send that took it (matched on
  ``last_attempt_at``), and never contains the receiver's answer beyond its status code.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import secrets
import time
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.audit.services import Actor, record
from apps.moderation import outbound
from apps.moderation.models import WebhookDelivery, WebhookSubscription
from mediacommon import events as catalog

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
    """The total deadline of one request, from name resolution to the answer's headers."""
    return _conf("MEDIAINTEL_WEBHOOK_TIMEOUT", 10.0)


#: the deliver task's soft and hard time limits exceed the request deadline by these margins
#: (workers/tasks/webhooks.py); the lease exceeds the hard limit by LEASE_MARGIN - HARD_MARGIN.
SOFT_MARGIN, HARD_MARGIN, LEASE_MARGIN = 10.0, 15.0, 20.0


def lease_seconds() -> float:
    """How long a send holds its delivery: past the deadline and the task's hard time limit."""
    return timeout() + LEASE_MARGIN


def allow_private() -> bool:
    return bool(getattr(settings, "MEDIAINTEL_WEBHOOK_ALLOW_PRIVATE", False))


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


# ------------------------------------------------------------------ events and bodies
#: domain event type (``mediacommon.events``) → the webhook event that delivers it; the webhook's
#: ``data`` is the domain event's ``data``, unchanged. Every name in ``WebhookSubscription.EVENTS``
#: is delivered for at least one domain event (a test checks both ways).
DOMAIN_EVENTS: dict[str, str] = {"decision.made": "moderation.decided", "review.created": "review.created",
                                 "appeal.decided": "appeal.decided", "asset.ready": "asset.processed",
                                 "asset.failed": "asset.processed"}
#: the valid ``X-MediaIntel-Signature`` values
SIGNATURE_PATTERN = r"^t=[0-9]+(,v1=[0-9a-f]{64})+$"


def event_names() -> tuple[str, ...]:
    """Every webhook event the sender can deliver (what a subscription may name)."""
    return tuple(WebhookSubscription.EVENTS)


def domain_types(event: str) -> list[str]:
    """The domain event types delivered as the webhook ``event``."""
    return [t for t, name in DOMAIN_EVENTS.items() if name == event]


def envelope(event: str, data: dict[str, Any], *, event_id: Any, created_at: str) -> dict[str, Any]:
    """The body of every delivery of ``event`` (what :func:`body_schema` describes)."""
    return {"id": str(event_id), "event": event, "created_at": created_at, "data": data}


def body_schema(event: str) -> dict[str, Any]:
    """The JSON Schema (2020-12, as OpenAPI 3.1 uses it) of the body of a delivery of ``event``:
    the envelope of :func:`envelope` around the ``data`` schema(s) of its domain event type(s)."""
    datas = [catalog.EVENTS[t][2] for t in domain_types(event)]
    summary = " / ".join(f"{t}: {catalog.EVENTS[t][1]}" for t in domain_types(event))
    return {"type": "object", "additionalProperties": False, "required": ["id", "event", "created_at", "data"],
            "description": f"The body of a `{event}` delivery ({summary}).",
            "properties": {
                "id": {"type": "string", "format": "uuid",
                       "description": "The event id: the same in every delivery and retry of the event; "
                                      "de-duplicate on it (delivery is at least once)."},
                "event": {"const": event},
                "created_at": {"type": "string", "format": "date-time",
                               "description": "When the event happened (RFC 3339, UTC, ending in Z)."},
                "data": datas[0] if len(datas) == 1 else {"oneOf": datas}}}


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


# ------------------------------------------------------------------ subscriptions
def check_url(url: str) -> str:
    """``url`` if it may be a receiver now, else :class:`outbound.TargetError` naming the problem."""
    outbound.check_url(url, allow_private=allow_private(), resolve_timeout=timeout())
    return url


# ------------------------------------------------------------------ sending
def _fail(d: WebhookDelivery, token: Any, *, kind: str, error: str, status_code: int | None = None,
          duration_ms: int | None = None) -> bool:
    """Mark the delivery ``failed`` and audit it, if it is still the one ``token`` took."""
    with transaction.atomic():
        n = WebhookDelivery.objects.filter(pk=d.pk, status=WebhookDelivery.Status.PENDING,
                                           last_attempt_at=token).update(
            status=WebhookDelivery.Status.FAILED, next_attempt_at=None, last_status_code=status_code,
            last_error_kind=kind, last_error=error[:200], last_duration_ms=duration_ms)
        if n:
            record("webhook.failed", target_type="webhook_delivery", target_id=d.pk,
                   actor=Actor.system("webhooks"),
                   payload={"event": d.event, "event_id": str(d.event_id), "subscription": d.subscription_id,
                            "attempts": d.attempts, "error_kind": kind, "error": error[:200],
                            "status_code": status_code})
    if n:
        log.warning("webhook delivery %s failed for good after %s attempts: %s", d.pk, d.attempts, error,
                    extra={"delivery": d.pk, "event": d.event, "error_kind": kind, "status": status_code})
    return bool(n)


def _take(delivery_id: int) -> tuple[WebhookDelivery | None, dict[str, Any] | None]:
    """Take a due delivery for one send: count the attempt and lease it (one conditional UPDATE).

    Returns (delivery, None) when taken, or (None, result) when there is nothing to send: not
    due, already sent or failed, being sent, its subscription disabled, or its attempts spent
    (an earlier attempt was taken and never finished) — the last two end it ``failed``.
    """
    now = timezone.now()
    due = Q(status=WebhookDelivery.Status.PENDING) & (
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now + EARLY))
    row = (WebhookDelivery.objects.filter(due, pk=delivery_id)
           .values("attempts", "last_attempt_at", "subscription__enabled").first())
    if row is None:
        return None, {"result": "noop"}
    if not row["subscription__enabled"] or row["attempts"] >= max_attempts():
        d = WebhookDelivery.objects.get(pk=delivery_id)
        kind, error = (("disabled", "subscription disabled") if not row["subscription__enabled"] else
                       ("unfinished", f"no attempts left: attempt {row['attempts']} never finished "
                                      "(worker lost or time limit)"))
        # matched on last_attempt_at: a send that took it meanwhile owns it
        if _fail(d, row["last_attempt_at"], kind=kind, error=error):
            return None, {"result": "failed", "error": error}
        return None, {"result": "noop"}
    n = WebhookDelivery.objects.filter(due, pk=delivery_id, attempts=row["attempts"]).update(
        attempts=F("attempts") + 1, last_attempt_at=now, next_attempt_at=now + timedelta(seconds=lease_seconds()))
    if not n:
        return None, {"result": "noop"}
    return WebhookDelivery.objects.select_related("subscription").get(pk=delivery_id), None


def deliver(delivery_id: int) -> dict[str, Any]:
    """Send one delivery once (if due); record the attempt; schedule the next one on failure.

    Returns ``{"result": "delivered" | "retrying" | "failed" | "noop", …}``.
    """
    d, result = _take(delivery_id)
    if d is None:
        assert result is not None
        return result
    sub, token = d.subscription, d.last_attempt_at
    body = body_bytes(d.payload)
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT,
               SIGNATURE_HEADER: sign(sub.secret, body), EVENT_HEADER: d.event, DELIVERY_HEADER: str(d.pk)}
    attempt = outbound.send(sub.url, body, headers, timeout(), allow_private=allow_private())
    ms = int(attempt.seconds * 1000)
    mine = WebhookDelivery.objects.filter(pk=d.pk, status=WebhookDelivery.Status.PENDING, last_attempt_at=token)
    fields = {"last_status_code": attempt.status_code, "last_error_kind": attempt.error_kind,
              "last_error": attempt.error[:200], "last_duration_ms": ms}
    if attempt.ok:
        if not mine.update(status=WebhookDelivery.Status.DELIVERED, delivered_at=timezone.now(),
                           next_attempt_at=None, **fields):
            return {"result": "noop"}  # redelivered meanwhile: that send reports
        log.info("webhook delivered", extra={"delivery": d.pk, "event": d.event, "status": attempt.status_code,
                                             "attempt": d.attempts, "seconds": attempt.seconds})
        return {"result": "delivered", "status_code": attempt.status_code, "attempts": d.attempts}
    if d.attempts >= max_attempts():
        _fail(d, token, kind=attempt.error_kind, error=attempt.error, status_code=attempt.status_code,
              duration_ms=ms)
        return {"result": "failed", "status_code": attempt.status_code, "attempts": d.attempts,
                "error": attempt.error}
    delay = backoff(d.attempts)
    if not mine.update(next_attempt_at=timezone.now() + timedelta(seconds=delay), **fields):
        return {"result": "noop"}
    log.warning("webhook delivery %s attempt %s failed (%s: %s); retry in %.1fs", d.pk, d.attempts,
                attempt.error_kind, attempt.error, delay)
    send(d.pk, countdown=delay)
    return {"result": "retrying", "status_code": attempt.status_code, "attempts": d.attempts, "delay": delay}


def interrupted(delivery_id: int) -> None:
    """The task running the send hit its time limit: the attempt (already counted) failed; retry
    after the usual backoff, or give up when it was the last."""
    d = WebhookDelivery.objects.filter(pk=delivery_id, status=WebhookDelivery.Status.PENDING).first()
    if d is None:
        return
    error = "the send did not finish within the task's time limit"
    if d.attempts >= max_attempts():
        _fail(d, d.last_attempt_at, kind="timeout", error=error)
        return
    delay = backoff(d.attempts)
    if WebhookDelivery.objects.filter(pk=d.pk, status=WebhookDelivery.Status.PENDING,
                                      last_attempt_at=d.last_attempt_at).update(
            next_attempt_at=timezone.now() + timedelta(seconds=delay), last_error_kind="timeout", last_error=error):
        send(d.pk, countdown=delay)


def send(delivery_id: int, countdown: float | None = None) -> bool:
    """Publish the delivery task on its queue (False when the broker is unreachable: the sweep
    sends it later)."""
    from mediacommon.routing import TASK_QUEUES
    from mediaintel.celery import app

    queue = TASK_QUEUES[DELIVER_TASK]
    try:
        app.send_task(DELIVER_TASK, args=[delivery_id], queue=queue, routing_key=queue, countdown=countdown)
        return True
    except Exception as e:
        log.warning("could not publish webhook delivery %s: %s", delivery_id, e)
        return False


def sweep(batch: int = 500) -> int:
    """Publish due pending deliveries whose message may have been lost (beat, queue ``maintenance``).

    A delivery is swept when it has been due for ``MEDIAINTEL_WEBHOOK_SWEEP_GRACE`` seconds;
    its due time moves to now, so a backlog is not published again on every tick. A delivery
    being sent is not due (its lease is in the future), so it is never swept.
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
