"""OpenAPI post-processing: one error envelope, documented on every operation that can refuse.

Invariant: every 4xx/5xx response in the document has the ``Error`` schema
(``apps.core.errors.ErrorSerializer``: ``{"error": {"code", "message", "detail"}}``) as its
``application/json`` content, and every operation documents the refusals any request to it can
meet — 400 where it takes parameters or a body, 401/403 (authentication and role), 404 where
its path or body names an object or it takes ``?format=``, 409 where it takes a body, 405/406/415
(method, Accept and Content-Type negotiation) and 429 (throttles) — so a client never meets an
undocumented error status.
"""

from __future__ import annotations

from typing import Any

UUID_RE = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
"""A UUID path segment, for routes that take one (e.g. ``assets/<uuid>/audit``)."""


def generating_schema(view: Any) -> bool:
    """True while drf-spectacular instantiates ``view`` to describe it (no request user, no kwargs)."""
    return getattr(view, "swagger_fake_view", False)

ERROR_REF = {"$ref": "#/components/schemas/Error"}
ERROR_SCHEMA = {
    "type": "object",
    "description": "The API's one error envelope.",
    "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
        "code": {"type": "string", "description": "Stable machine-readable code."},
        "message": {"type": "string", "description": "What went wrong, for people."},
        "detail": {"description": "Per-field errors or facts about the refusal."}}}},
    "required": ["error"],
}
COMMON = {
    "401": "Not authenticated (no or an invalid, expired or revoked token).",
    "403": "Authenticated, but the role does not allow this.",
    "405": "Method not allowed.",
    "406": "The Accept header asks for a type this operation cannot produce.",
    "429": "Throttled: retry after the `Retry-After` header's seconds.",
}
METHODS = ("get", "post", "put", "patch", "delete")


def _error_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ERROR_REF}}}


def _names_objects(doc: dict[str, Any], body: dict[str, Any]) -> bool:
    """Whether a request body has a property holding an object's UUID (so the object may not exist)."""
    schemas = doc.get("components", {}).get("schemas", {})
    for media in body.get("content", {}).values():
        schema = media.get("schema", {})
        if "$ref" in schema:
            schema = schemas.get(schema["$ref"].rsplit("/", 1)[-1], {})
        if any(p.get("format") == "uuid" and not p.get("readOnly") for p in schema.get("properties", {}).values()):
            return True
    return False


def error_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook (``SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]``)."""
    result.setdefault("components", {}).setdefault("schemas", {}).setdefault("Error", ERROR_SCHEMA)
    for path, item in result.get("paths", {}).items():
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            responses = op.setdefault("responses", {})
            wanted = dict(COMMON)
            if op.get("parameters") or op.get("requestBody"):
                wanted["400"] = "Invalid parameters or body; `detail` names each problem."
            names = {p.get("name") for p in op.get("parameters", [])}
            if "{" in path:
                wanted["404"] = "No such object, or not one you may see."
            elif "format" in names:
                wanted["404"] = "Unknown `format`: `detail.formats` lists the ones this operation offers."
            if op.get("requestBody") and "404" not in wanted and _names_objects(result, op["requestBody"]):
                wanted["404"] = "An object the body names (by id) does not exist, or is not one you may see."
            if op.get("requestBody"):
                wanted["409"] = "Conflicts with the current state, e.g. a name another object already holds."
                wanted["413"] = "The request body exceeds the size limit."
                wanted["415"] = "Unsupported Content-Type."
            for code, description in wanted.items():
                responses.setdefault(code, _error_response(description))
            for code, resp in responses.items():
                if code[0] in "45" and "$ref" not in resp:
                    resp.setdefault("content", {})
                    if not resp["content"]:
                        resp["content"] = {"application/json": {"schema": ERROR_REF}}
    return result
