"""What is seen, localized in time: object detections and image tags aggregated per scene.

A *scene label* is one concept (``mediacommon.vocabulary``) seen in one scene: its start and end
are the scene's, its raw labels are every detector class or ImageNet tag that produced it, its
confidence the best among them. Computed from the stored rows on read, so it always agrees with
the current ``detect`` and ``tags`` results (a re-run of either changes it with no extra step).

Invariants: every label returned has ``start <= end`` (both None for an image); a frame's label
belongs to the scene containing its keyframe; nudity-detector classes are not labels here.
"""

from __future__ import annotations

from typing import Any

from apps.insights.models import Detection, Keyframe, Scene, Tag
from mediacommon.vocabulary import ancestors, canonical, expand

#: ImageNet tags below this probability are too unsure to place a concept in a scene.
TAG_MIN_SCORE = 0.2


def scene_labels(asset_id: Any, term: str | None = None) -> list[dict[str, Any]]:
    """Scene labels of an asset, in time order then best first; only concepts under ``term`` if given."""
    wanted = expand(term) if term else None
    scenes = {s.index: (s.start, s.end) for s in Scene.objects.filter(asset_id=asset_id)}
    kf_scene = dict(Keyframe.objects.filter(asset_id=asset_id).values_list("index", "scene_index"))
    seen: list[tuple[str, str, float, int | None, float | None]] = [
        (label, concept or canonical(label), conf, kf, t) for label, concept, conf, kf, t in
        Detection.objects.filter(asset_id=asset_id, detector="objects")
        .values_list("label", "canonical", "confidence", "keyframe_index", "start")]
    seen += [(label, concept or canonical(label, "imagenet"), score, kf, t) for label, concept, score, kf, t in
             Tag.objects.filter(asset_id=asset_id, score__gte=TAG_MIN_SCORE)
             .values_list("label", "canonical", "score", "keyframe_index", "start")]
    grouped: dict[tuple[Any, str], dict[str, Any]] = {}
    for label, concept, conf, kf, t in seen:
        if wanted is not None and concept not in wanted:
            continue
        scene = kf_scene.get(kf) if kf is not None else None
        start, end = scenes.get(scene, (t, t)) if scene is not None else (t, t)
        key = (scene if scene is not None else ("t", t), concept)
        g = grouped.setdefault(key, {"label": concept, "ancestors": list(ancestors(concept)), "raw": set(),
                                     "scene_index": scene, "start": start, "end": end, "confidence": 0.0,
                                     "keyframes": set()})
        g["raw"].add(label)
        g["confidence"] = round(max(g["confidence"], float(conf)), 4)
        if kf is not None:
            g["keyframes"].add(kf)
    out = []
    for g in grouped.values():
        g["raw"] = sorted(g["raw"])
        g["keyframes"] = sorted(g["keyframes"])
        out.append(g)
    out.sort(key=lambda g: (g["start"] if g["start"] is not None else -1.0, -g["confidence"], g["label"]))
    return out

