"""The text of an asset, from every source, as searchable pieces with their place in the media."""

from __future__ import annotations

import json
from typing import Any

from django.core.files.storage import default_storage

from apps.insights.models import OcrText, TranscriptSegment
from workers.base import StageContext
from workers.tasks.decode import derived_key


def text_document(ctx: StageContext) -> dict[str, Any] | None:
    """The extracted document of a text asset (text + segments), or None."""
    key = derived_key(ctx.asset.sha256, "text.json")
    if ctx.asset.kind != "text" or not default_storage.exists(key):
        return None
    with default_storage.open(key, "rb") as f:
        return json.loads(f.read())


def searchable_texts(ctx: StageContext) -> list[dict[str, Any]]:
    """Transcript windows (time ranges kept), OCR spans, text chunks (char offsets kept), and tags:
    image tags + detection labels with their vocabulary concepts and ancestors ("German shepherd, dog,
    mammal, animal"), one chunk per run of keyframes with the same labels, spanning the scenes of those
    keyframes (start of the first scene to end of the last; a keyframe's own time when scenes are
    unknown), or one for an image (no time)."""
    from apps.insights.models import Detection, Tag
    from workers.engines.text_embed import chunk_text, transcript_windows

    out: list[dict[str, Any]] = []
    segs = list(TranscriptSegment.objects.filter(asset_id=ctx.asset.pk).order_by("index")
                .values("start", "end", "text", "language"))
    for w in transcript_windows(segs):
        out.append({"source": "transcript", "text": w.text, "start": w.start, "end": w.end,
                    "language": segs[w.first_segment]["language"] or ""})
    for o in OcrText.objects.filter(asset_id=ctx.asset.pk).order_by("start", "id"):
        out.append({"source": "ocr", "text": o.text, "start": o.start, "end": o.end})
    doc = text_document(ctx)
    if doc:
        timed = [s for s in doc["segments"] if s.get("start") is not None]
        if timed:  # subtitles: windows over cues, like a transcript
            for w in transcript_windows(timed):
                first = timed[w.first_segment]
                last = timed[w.last_segment]
                out.append({"source": "text", "text": w.text, "start": w.start, "end": w.end,
                            "char_start": first["char_start"], "char_end": last["char_end"]})
        else:
            for c in chunk_text(doc["text"]):
                out.append({"source": "text", "text": c.text, "char_start": c.start, "char_end": c.end})
    from apps.insights.models import Keyframe, Scene
    from mediacommon.vocabulary import ancestors, canonical

    scenes = {sc.index: (sc.start, sc.end) for sc in Scene.objects.filter(asset_id=ctx.asset.pk)}
    kf_span = {i: scenes.get(si) for i, si in
               Keyframe.objects.filter(asset_id=ctx.asset.pk).values_list("index", "scene_index")}
    frames: dict[int | None, dict[str, Any]] = {}  # keyframe index (None: the image) → time, label → best score
    rows = [(kf, t, label, score, concept or canonical(label, "imagenet")) for kf, t, label, score, concept in
            Tag.objects.filter(asset_id=ctx.asset.pk).values_list("keyframe_index", "start", "label", "score",
                                                                  "canonical")]
    rows += [(kf, t, label.replace("_", " ").lower(), score, (concept or canonical(label)) if det == "objects"
              else "") for kf, t, label, score, det, concept in
             Detection.objects.filter(asset_id=ctx.asset.pk).values_list("keyframe_index", "start", "label",
                                                                          "confidence", "detector", "canonical")]
    for kf, t, label, score, _ in rows:
        f = frames.setdefault(kf, {"time": t, "labels": {}})
        f["labels"][label] = max(score, f["labels"].get(label, 0.0))
    for kf, _, _, score, concept in rows:  # then each concept and its ancestors ("dog", "mammal", "animal")
        if concept:
            labels = frames[kf]["labels"]
            for word in (concept, *ancestors(concept)):
                labels[word] = max(score, labels.get(word, 0.0))
    run: dict[str, Any] | None = None
    run_labels: set[str] = set()
    for kf in sorted(frames, key=lambda k: (frames[k]["time"] or 0.0, -1 if k is None else k)):
        f = frames[kf]
        span = kf_span.get(kf) or (f["time"], f["time"])  # the keyframe's scene, else its instant
        if run is not None and run_labels == set(f["labels"]):  # consecutive keyframes showing the same things
            run["end"] = max(run["end"], span[1]) if run["end"] is not None and span[1] is not None else span[1]
            continue
        text = ", ".join(sorted(f["labels"], key=lambda lb: (-f["labels"][lb], lb)))
        run, run_labels = {"source": "tags", "text": text, "start": span[0], "end": span[1], "language": "en"}, \
            set(f["labels"])
        out.append(run)
    return out
