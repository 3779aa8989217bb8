"""Images a visual stage analyses: the keyframes of a video, or the image asset itself."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.files.storage import default_storage
from PIL import Image

from apps.insights.models import Keyframe
from workers.base import StageContext, StageSkipped


@dataclass
class Frame:
    index: int | None  # keyframe index, None for an image asset
    time: float | None
    image: Image.Image


def frames_for(ctx: StageContext) -> list[Frame]:
    """Decoded once per stage; video keyframes come from the JPEGs the keyframes stage stored."""
    if ctx.asset.kind == "image":
        from workers.engines.decode import load_image

        return [Frame(None, None, load_image(ctx.media_path()))]
    out = []
    for kf in Keyframe.objects.filter(asset_id=ctx.asset.pk).order_by("index"):
        with default_storage.open(kf.storage_key, "rb") as f:
            img = Image.open(f)
            img.load()
        out.append(Frame(kf.index, kf.time, img.convert("RGB")))
    if not out:
        raise StageSkipped("no keyframes to analyse")
    return out
