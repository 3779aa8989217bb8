"""URLs of an asset's resources, built with ``reverse()``: one function per kind of link.

Every page, serializer and search result that links to an asset's content, a keyframe or the
asset's console page goes through these, so a route change moves every link with it.
"""

from __future__ import annotations

from typing import Any

from django.urls import reverse


def content_url(asset_id: Any) -> str:
    """The asset's original bytes (``GET /api/v1/assets/<id>/content``)."""
    return reverse("asset-content", args=[asset_id])


def keyframe_url(asset_id: Any, index: int) -> str:
    """The stored JPEG thumbnail of one keyframe."""
    return reverse("asset-keyframe", kwargs={"pk": asset_id, "index": index})


def thumbnail_url(asset_id: Any, kind: str, keyframe_index: int | None) -> str | None:
    """A picture of the asset: the keyframe when there is one, else an image's own content, else None."""
    if keyframe_index is not None:
        return keyframe_url(asset_id, keyframe_index)
    if kind == "image":
        return content_url(asset_id)
    return None


def console_url(asset_id: Any, seconds: float | None = None) -> str:
    """The asset's console page, at ``seconds`` into its timeline when given."""
    base = reverse("console-asset", args=[asset_id])
    return f"{base}?t={seconds:.2f}" if seconds is not None else base
