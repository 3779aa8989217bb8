"""Review-page evidence assembled from data already read: pure functions, no database."""

from __future__ import annotations

import uuid

from apps.insights.models import Detection, Keyframe, TextSpanFlag, TranscriptSegment
from apps.moderation import evidence
from apps.moderation.evidence import EvidenceData, HashMatchData
from apps.moderation.models import Category, Signal

NUDITY = Category(code="sexual/explicit_nudity", name="Explicit nudity")
THREAT = Category(code="harassment/threat", name="Threat")


def signal(category: Category, source: str, score: float, start: float | None = None, end: float | None = None,
           keyframe_index: int | None = None, **ev: object) -> Signal:
    return Signal(category=category, source=source, score=score, start=start, end=end,
                  keyframe_index=keyframe_index, evidence=ev)


def test_signals_on_the_same_range_share_one_marker_naming_both_sources():
    sigs = [signal(NUDITY, "nsfw", 0.9, 10.0, 12.0), signal(NUDITY, "nudity", 0.7, 10.0, 12.0),
            signal(THREAT, "text", 0.5, 50.0, None)]
    lanes = evidence.signal_lanes(sigs, 100.0)
    assert [la["code"] for la in lanes] == ["sexual/explicit_nudity", "harassment/threat"]
    (marker,) = lanes[0]["markers"]
    assert marker["sources"] == "nsfw, nudity" and marker["left"] == 10.0 and marker["width"] == 2.0
    assert lanes[1]["markers"][0]["width"] == 0.6  # a point in time stays visible


def test_markers_stay_inside_the_timeline_when_a_signal_runs_past_the_end():
    (lane,) = evidence.signal_lanes([signal(NUDITY, "nsfw", 0.9, 99.9, 150.0)], 100.0)
    m = lane["markers"][0]
    assert m["left"] == 99.4 and m["left"] + m["width"] <= 100.0


def test_the_timeline_of_an_asset_without_duration_ends_at_its_last_signal():
    assert evidence.timeline_duration(None, [signal(NUDITY, "nsfw", 0.9, 3.0, 8.0)]) == 8.0
    assert evidence.timeline_duration(None, []) == 0.0
    assert evidence.signal_lanes([signal(NUDITY, "nsfw", 0.9, 3.0, 8.0)], 0.0) == []


def test_unflagged_weak_detections_are_left_out_and_flagged_ones_coloured():
    dets = [Detection(detector="nudity", label="FEMALE_BREAST_EXPOSED", confidence=0.2, box=[0.1, 0.1, 0.5, 0.5]),
            Detection(detector="objects", label="Knife", confidence=0.2, box=[0.0, 0.0, 2.0, 1.0]),
            Detection(detector="objects", label="cup", confidence=0.2, box=[0.0, 0.0, 1.0, 1.0]),
            Detection(detector="objects", label="cup", confidence=0.9, box="broken")]
    boxes = evidence.detection_boxes(dets)
    assert [(b["code"], b["flagged"]) for b in boxes] == [("sexual/explicit_nudity", True), ("violence/weapons", True)]
    assert boxes[1]["width"] == 100.0  # clipped to the image


def test_a_span_flagged_twice_is_highlighted_once_and_pieces_rebuild_the_text():
    text = "I will hurt you today"
    flags = [TextSpanFlag(source="transcript", ref_id=7, char_start=7, char_end=11, category="threat", score=0.8)]
    sigs = [signal(THREAT, "text", 0.8, text_source="transcript", ref_id=7, char_start=7, char_end=11)]
    spans = evidence.text_spans(flags, sigs)
    assert len(spans[("transcript", 7)]) == 1
    counter = evidence.Counter()
    pieces = evidence.highlight(text, spans[("transcript", 7)], counter)
    assert "".join(p["text"] for p in pieces) == text
    assert [p["text"] for p in pieces if p["flags"]] == ["hurt"] and counter.hits[0]["anchor"] == "hit-1"


def test_assembled_evidence_blurs_frames_with_sexual_signals_and_links_frames_by_reverse():
    asset_id = uuid.uuid4()
    sigs = [signal(NUDITY, "nsfw", 0.9, 1.0, 1.0, keyframe_index=0), signal(THREAT, "text", 0.6, 2.0, 3.0,
            text_source="transcript", ref_id=1, char_start=0, char_end=4, matched="hurt")]
    data = EvidenceData(
        asset_id=asset_id, kind="video", duration=10.0, signals=sigs,
        keyframes=[Keyframe(index=0, time=1.0, width=640, height=360), Keyframe(index=1, time=5.0, width=0, height=0)],
        faces={1: [{"box": [0.4, 0.4, 0.6, 0.6]}]},
        transcript=[TranscriptSegment(pk=1, text="hurt them", start=2.0, end=3.0)],
    )
    ctx = evidence.assemble(data)
    assert ctx["sensitive"] and [f["sensitive"] for f in ctx["frames"]] == [True, False]
    assert ctx["frames"][0]["url"] == f"/api/v1/assets/{asset_id}/keyframes/0.jpg"
    assert ctx["frames"][1]["aspect"] == "16 / 9" and ctx["face_total"] == 1
    assert sigs[1].summary == "“hurt” (speech)" and sigs[0].color == evidence.color_for("sexual/x")
    assert ctx["transcript"][0]["hit"] and ctx["text_hits"][0]["code"] == "harassment/threat"
    assert ctx["document"] is None and not ctx["document_truncated"]


def test_a_hash_match_without_a_known_source_shows_only_this_assets_picture():
    asset_id = uuid.uuid4()
    s = signal(Category(code="known_bad/csam_hash", name="Known"), "hash", 1.0, keyframe_index=None,
               bank="b1", distance=4)
    m = evidence.hash_match(asset_id, "image", HashMatchData(signal=s))
    assert m["mine"] == f"/api/v1/assets/{asset_id}/content" and m["theirs"] is None and m["distance"] == 4
