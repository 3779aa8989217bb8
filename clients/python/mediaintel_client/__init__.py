"""A typed client for the MediaIntel REST API v1.

Invariants:
- Every request goes to ``{base_url}/api/v1/…`` with ``Authorization: Token …``; nothing else.
- Uploads stream the file from disk in chunks (constant memory, any size) as a raw
  ``application/octet-stream`` body with the name in ``Content-Disposition``.
- Any non-2xx answer raises :class:`MediaIntelError` carrying the server's error envelope
  (``{"error": {"code", "message", "detail"}}``); the client never returns an error body as data.
- Paths and fields used here are checked against the server's OpenAPI document by the project's
  tests (``tests/test_client.py``), so a client that no longer matches the API fails there.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import IO, Any, Literal
from urllib.parse import quote

import httpx

__all__ = ["Asset", "MediaIntel", "MediaIntelError", "WaitTimeout"]

CHUNK = 1024 * 1024
SearchMode = Literal["hybrid", "semantic", "text"]
SimilarMode = Literal["both", "pdq", "embedding"]
ReprocessMode = Literal["missing", "stale", "failed", "all"]
Outcome = Literal["approve", "reject", "escalate"]
FINAL_STATUSES = frozenset({"ready", "failed"})


class MediaIntelError(Exception):
    """The API refused a request: HTTP ``status`` and the error envelope's ``code``, ``message``, ``detail``."""

    def __init__(self, status: int, code: str, message: str, detail: Any = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.detail = status, code, message, detail


class WaitTimeout(MediaIntelError):
    """Assets did not reach ``ready``/``failed`` within the time given; ``pending`` holds their last state."""

    def __init__(self, pending: list[Asset]) -> None:
        super().__init__(0, "timeout", f"{len(pending)} asset(s) still processing")
        self.pending = pending


@dataclass(frozen=True)
class Asset:
    """One media asset as ``GET /api/v1/assets/{id}/`` describes it (unknown fields kept in ``extra``)."""

    id: str
    kind: str
    status: str
    moderation_state: str
    filename: str = ""
    title: str = ""
    external_id: str = ""
    sha256: str = ""
    size: int = 0
    mime_type: str = ""
    duration: float | None = None
    width: int | None = None
    height: int | None = None
    created_at: str = ""
    processed_at: str | None = None
    duplicate: bool = False
    stages: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Asset:
        known = {f.name for f in fields(cls)} - {"extra"}
        kw = {k: v for k, v in data.items() if k in known}
        return cls(**kw, extra={k: v for k, v in data.items() if k not in known})

    @property
    def done(self) -> bool:
        return self.status in FINAL_STATUSES


def _file_chunks(fh: IO[bytes]) -> Iterator[bytes]:
    while chunk := fh.read(CHUNK):
        yield chunk


def _filters(values: dict[str, Any], *, text: bool = True) -> dict[str, Any]:
    """Filters as the API takes them: ``None`` left out, a list, tuple or set as one comma-separated
    value (``kind=["image", "video"]`` → ``"image,video"``); for a query string or a form
    (``text``), a bool as ``true``/``false`` (a JSON body keeps JSON booleans)."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, (list, tuple, set, frozenset)):
            value = ",".join(str(v) for v in (sorted(value) if isinstance(value, (set, frozenset)) else value))
        elif isinstance(value, bool) and text:
            value = "true" if value else "false"
        out[key] = value
    return out


class MediaIntel:
    """A session with one MediaIntel server. Use as a context manager, or call :meth:`close`."""

    def __init__(self, base_url: str, token: str, *, timeout: float = 60.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self._http = httpx.Client(base_url=base_url.rstrip("/") + "/api/v1/", timeout=timeout, transport=transport,
                                  headers={"Authorization": f"Token {token}", "Accept": "application/json"})

    def __enter__(self) -> MediaIntel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # ------------------------------------------------------------------ plumbing
    def _request(self, method: str, path: str, **kw: Any) -> Any:
        resp = self._http.request(method, path, **kw)
        if resp.status_code >= 400:
            try:
                err = resp.json().get("error", {})
            except ValueError:
                err = {}
            raise MediaIntelError(resp.status_code, str(err.get("code", "http_error")),
                                  str(err.get("message", resp.reason_phrase)), err.get("detail"))
        if resp.status_code == 204 or not resp.content:
            return None
        return resp.json()

    def _pages(self, path: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        params = _filters(params)
        params.setdefault("limit", 100)
        offset = 0
        while True:
            page = self._request("GET", path, params={**params, "offset": offset})
            yield from page["results"]
            if not page.get("next") or not page["results"]:
                return
            offset += len(page["results"])

    # ------------------------------------------------------------------ assets
    def upload(self, source: str | Path | IO[bytes], *, filename: str | None = None, title: str = "",
               external_id: str = "", idempotency_key: str | None = None) -> Asset:
        """Upload a file (a path or a seekable binary file object), streamed in chunks from its current
        position; the same bytes again give the same asset (``duplicate`` True)."""
        if isinstance(source, (str, Path)):
            path = Path(source)
            with path.open("rb") as fh:
                return self.upload(fh, filename=filename or path.name, title=title, external_id=external_id,
                                   idempotency_key=idempotency_key)
        name = filename or Path(getattr(source, "name", "") or "upload").name
        start = source.tell()
        size = source.seek(0, 2) - start  # sent as Content-Length: servers need not accept chunked bodies
        source.seek(start)
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size),
                   "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        params = {k: v for k, v in (("title", title), ("external_id", external_id)) if v}
        data = self._request("POST", "assets/", content=_file_chunks(source), headers=headers, params=params)
        return Asset.from_json(data)

    def asset(self, asset_id: str) -> Asset:
        return Asset.from_json(self._request("GET", f"assets/{asset_id}/"))

    def assets(self, **filters: Any) -> Iterator[Asset]:
        """Every asset you may see, following pages; ``filters`` are the list's query parameters."""
        return (Asset.from_json(a) for a in self._pages("assets/", filters))

    def wait_ready(self, assets: Iterable[Asset | str], *, timeout: float = 600.0, poll: float = 1.0,
                   progress: Callable[[int, int, Asset], None] | None = None) -> list[Asset]:
        """Poll until every asset is ``ready`` or ``failed``; ``progress(done, total, asset)`` on each change.

        Returns the final assets in the order given; raises :class:`WaitTimeout` after ``timeout`` seconds.
        """
        ids = [a.id if isinstance(a, Asset) else str(a) for a in assets]
        latest: dict[str, Asset] = {}
        deadline = time.monotonic() + timeout
        while True:
            for i in ids:
                prev = latest.get(i)
                if prev is not None and prev.done:
                    continue
                now = self.asset(i)
                latest[i] = now
                if progress and (prev is None or prev.status != now.status):
                    progress(sum(a.done for a in latest.values()), len(ids), now)
            if all(latest[i].done for i in ids):
                return [latest[i] for i in ids]
            if time.monotonic() > deadline:
                raise WaitTimeout([latest[i] for i in ids if not latest[i].done])
            time.sleep(poll)

    def insights(self, asset_id: str) -> dict[str, Any]:
        """Everything analysis produced for the asset, each row with its engine version and time range."""
        return self._request("GET", f"assets/{asset_id}/insights/")

    def reprocess(self, asset_id: str, mode: ReprocessMode = "stale",
                  stages: list[str] | None = None) -> dict[str, Any]:
        return self._request("POST", f"assets/{asset_id}/reprocess/", json={"mode": mode, "stages": stages or []})

    def delete(self, asset_id: str) -> None:
        self._request("DELETE", f"assets/{asset_id}/")

    # ------------------------------------------------------------------ search
    def search(self, q: str, *, mode: SearchMode = "hybrid", limit: int = 10, offset: int = 0,
               **filters: Any) -> dict[str, Any]:
        """Moments that match ``q`` by meaning, words or both, grouped by asset (see the API docs)."""
        return self._request("GET", "search/", params={"q": q, "mode": mode, "limit": limit, "offset": offset,
                                                       **_filters(filters)})

    def similar(self, *, image: str | Path | bytes | None = None, asset_id: str | None = None,
                mode: SimilarMode = "both", limit: int = 10, **options: Any) -> dict[str, Any]:
        """Assets that look like an image (path or bytes) or a stored asset; exactly one of the two."""
        if (image is None) == (asset_id is None):
            raise ValueError("give exactly one of image= or asset_id=")
        if asset_id is not None:
            body = {"asset_id": asset_id, "mode": mode, "limit": limit, **_filters(options, text=False)}
            return self._request("POST", "search/similar/", json=body)
        data = image if isinstance(image, bytes) else Path(image).read_bytes()
        name = "query.jpg" if isinstance(image, bytes) else Path(image).name
        form = {"mode": mode, "limit": str(limit), **{k: str(v) for k, v in _filters(options).items()}}
        return self._request("POST", "search/similar/", data=form, files={"file": (name, data)})

    # ------------------------------------------------------------------ review
    def review_items(self, **filters: Any) -> Iterator[dict[str, Any]]:
        return self._pages("review-items/", filters)

    def claim(self, item_id: str) -> dict[str, Any]:
        return self._request("POST", f"review-items/{item_id}/claim/")

    def release(self, item_id: str) -> dict[str, Any]:
        return self._request("POST", f"review-items/{item_id}/release/")

    def decide(self, item_id: str, outcome: Outcome, *, reason_codes: list[str] | None = None,
               note: str = "") -> dict[str, Any]:
        return self._request("POST", f"review-items/{item_id}/decide/",
                             json={"outcome": outcome, "reason_codes": reason_codes or [], "note": note})

    # ------------------------------------------------------------------ dead letters
    def dead_letters(self, *, open_only: bool = True) -> Iterator[dict[str, Any]]:
        return self._pages("dead-letters/", {"open": "true" if open_only else None})

    def replay(self, dead_letter_id: str) -> dict[str, Any]:
        """Re-run a dead stage; raises ``MediaIntelError`` (409) when it could not be sent."""
        return self._request("POST", f"dead-letters/{dead_letter_id}/replay/")

    def discard(self, dead_letter_id: str) -> dict[str, Any]:
        return self._request("POST", f"dead-letters/{dead_letter_id}/discard/")
