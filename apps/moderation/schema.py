"""OpenAPI 3.1 ``webhooks``: one entry per event the webhook sender delivers.

Invariant: the document's ``webhooks`` names exactly :func:`apps.moderation.webhooks.event_names`,
each with the body schema the sender's own :func:`~apps.moderation.webhooks.body_schema` gives
(built from the domain event catalogue ``mediacommon.events`` that the payloads are checked
against), the headers :func:`~apps.moderation.webhooks.deliver` sends, and what the sender does
with each answer.
"""

from __future__ import annotations

from typing import Any

from apps.moderation import webhooks

VERIFY = (
    "Verify a delivery: split `X-MediaIntel-Signature` on `,` into `t=<unix time>` and one or more "
    "`v1=<hex>`; compute HMAC-SHA256 with the subscription's secret over the bytes `<t>.` followed by the "
    "raw request body (before any JSON parsing); accept when it equals a `v1` value (constant-time "
    "comparison) and `t` is within 5 minutes of now. See docs/api.md#webhooks for curl/shell and Python."
)


def component_name(event: str) -> str:
    """``asset.processed`` → ``WebhookAssetProcessed`` (the body's component in the document)."""
    return "Webhook" + "".join(p.capitalize() for p in event.replace("_", ".").split("."))


def _headers(event: str) -> list[dict[str, Any]]:
    return [
        {"name": webhooks.SIGNATURE_HEADER, "in": "header", "required": True,
         "description": "`t=<unix time>,v1=<hex HMAC-SHA256(secret, \"<t>.<raw body>\")>`. " + VERIFY,
         "schema": {"type": "string", "pattern": webhooks.SIGNATURE_PATTERN},
         "example": "t=1700000000,v1=" + "0" * 64},
        {"name": webhooks.EVENT_HEADER, "in": "header", "required": True,
         "description": "The event name (the same as the body's `event`).",
         "schema": {"const": event}},
        {"name": webhooks.DELIVERY_HEADER, "in": "header", "required": True,
         "description": "The delivery id (one per subscription and event; the same on every retry and on "
                        "a manual redelivery). `GET /api/v1/webhook-deliveries/{id}/` shows its log.",
         "schema": {"type": "string", "pattern": "^[0-9]+$"}},
        {"name": "User-Agent", "in": "header", "required": True, "schema": {"const": webhooks.USER_AGENT}},
    ]


RESPONSES = {
    "2XX": {"description": "Delivered: any 2xx ends the delivery (`status: delivered`). The answer's body "
                           "is never read."},
    "default": {"description": "Any other answer (3xx included: redirects are not followed), a timeout "
                               "(`MEDIAINTEL_WEBHOOK_TIMEOUT` seconds for the whole request) or a connection "
                               "error is a failed attempt: the sender retries after an exponential backoff "
                               "with jitter (`MEDIAINTEL_WEBHOOK_BACKOFF`·2^(attempt−1)·[0.5, 1] seconds, at "
                               "most `MEDIAINTEL_WEBHOOK_BACKOFF_CAP`) until `MEDIAINTEL_WEBHOOK_MAX_ATTEMPTS` "
                               "attempts, then marks it `failed` (an admin may redeliver it). Only the status "
                               "code is kept."},
}


def add_webhooks(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook (``SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]``)."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    hooks = result.setdefault("webhooks", {})
    for event in webhooks.event_names():
        name = component_name(event)
        schemas[name] = webhooks.body_schema(event)
        hooks[event] = {"post": {
            "operationId": f"webhook_{event.replace('.', '_')}",
            "summary": f"`{event}` delivery",
            "description": f"Sent to every enabled subscription that names `{event}`, after the event commits. "
                           "Delivery is at least once: de-duplicate on the body's `id`.",
            "tags": ["webhooks"],
            "parameters": _headers(event),
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": {"$ref": f"#/components/schemas/{name}"}}}},
            "responses": RESPONSES,
            "security": [],
        }}
    return result
