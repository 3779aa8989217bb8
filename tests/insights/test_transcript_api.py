"""GET /api/v1/assets/{id}/transcript as WebVTT, SubRip or JSON: negotiation, permissions, JSON errors."""

from __future__ import annotations

import pytest

from apps.insights.models import TranscriptSegment
from apps.insights.subtitles import parse_srt, parse_vtt
from tests.moderation.helpers import api, make_asset, make_user

pytestmark = pytest.mark.django_db

SEGMENTS = [(0.0, 2.5, "Welcome aboard the harbour ferry."),
            (3.0, 19.0, "Today we sail past the lighthouse, the old fish market, the naval museum and the "
                        "island where the summer festival takes place every year in July."),
            (19.5, 21.0, "Enjoy the trip!")]


@pytest.fixture
def owner():
    return make_user("olga", "uploader")


@pytest.fixture
def video(owner):
    asset = make_asset(owner, kind="video", title="ferry.mp4")
    for i, (s, e, t) in enumerate(SEGMENTS):
        TranscriptSegment.objects.create(asset=asset, stage="transcribe", engine="whisper", engine_version="w@1",
                                         index=i, start=s, end=e, text=t, language="en", confidence=0.9)
    return asset


def url(asset, suffix=""):
    return f"/api/v1/assets/{asset.pk}/transcript{suffix}"


def words(cues):
    return [w for c in cues for w in c.text.split()]


ALL_WORDS = [w for _, _, t in SEGMENTS for w in t.split()]


@pytest.mark.parametrize("how", ["suffix", "query", "accept"])
def test_vtt_by_suffix_query_or_accept_parses_back_to_the_transcript(owner, video, how):
    c = api(owner)
    resp = {"suffix": lambda: c.get(url(video, ".vtt")), "query": lambda: c.get(url(video), {"format": "vtt"}),
            "accept": lambda: c.get(url(video), HTTP_ACCEPT="text/vtt")}[how]()
    assert resp.status_code == 200, resp.content
    assert resp["Content-Type"] == "text/vtt; charset=utf-8"
    assert resp["X-Content-Type-Options"] == "nosniff"
    cues = parse_vtt(resp.content.decode())
    assert words(cues) == ALL_WORDS
    assert cues[0].start == 0.0 and cues[0].end == 2.5 and cues[-1].end == 21.0
    assert all(len(line) <= 42 for c in cues for line in c.lines) and all(c.end - c.start <= 7 for c in cues)


def test_srt_and_json(owner, video):
    c = api(owner)
    srt = c.get(url(video, ".srt"))
    assert srt.status_code == 200 and srt["Content-Type"] == "application/x-subrip; charset=utf-8"
    assert words(parse_srt(srt.content.decode())) == ALL_WORDS
    js = c.get(url(video, ".json"))
    assert js.status_code == 200 and js["Content-Type"] == "application/json"
    body = js.json()
    assert [s["text"] for s in body["segments"]] == [t for _, _, t in SEGMENTS]
    assert body["languages"] == ["en"] and body["rules"]["max_line"] == 42
    assert [line for cue in body["cues"] for line in cue["lines"]] == [
        line for cue in parse_srt(srt.content.decode()) for line in cue.lines]
    assert c.get(url(video)).json() == body  # JSON is the default


def test_unknown_format_is_a_json_404_naming_the_formats(owner, video):
    resp = api(owner).get(url(video), {"format": "ass"})
    assert resp.status_code == 404 and resp["Content-Type"] == "application/json"
    assert resp.json()["error"]["code"] == "unknown_format"
    assert resp.json()["error"]["detail"]["formats"] == ["json", "srt", "vtt"]
    assert api(owner).get(url(video, ".ass")).status_code == 404


def test_unacceptable_accept_is_a_json_406(owner, video):
    resp = api(owner).get(url(video), HTTP_ACCEPT="application/pdf")
    assert resp.status_code == 406 and resp["Content-Type"] == "application/json"
    assert resp.json()["error"]["code"] == "not_acceptable"


def test_other_uploaders_get_a_json_404_even_when_asking_for_vtt(video):
    other = make_user("mallory", "uploader")
    resp = api(other).get(url(video, ".vtt"))
    assert resp.status_code == 404 and resp["Content-Type"] == "application/json"
    assert resp.json()["error"]["code"] == "not_found"
    assert api(make_user("mia", "moderator")).get(url(video, ".vtt")).status_code == 200


def test_anonymous_is_refused(video):
    from rest_framework.test import APIClient

    assert APIClient().get(url(video, ".vtt")).status_code in (401, 403)


def test_an_image_has_no_transcript(owner):
    image = make_asset(owner, kind="image")
    resp = api(owner).get(url(image, ".vtt"))
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "no_transcript"


def test_a_video_without_speech_is_an_empty_valid_file(owner):
    silent = make_asset(owner, kind="video")
    resp = api(owner).get(url(silent, ".vtt"))
    assert resp.status_code == 200 and parse_vtt(resp.content.decode()) == []
    srt = api(owner).get(url(silent, ".srt"))  # an empty body keeps its type (it once had none)
    assert srt.status_code == 200 and srt.content == b"" and srt["Content-Type"].startswith("application/x-subrip")
    assert vtt_type(resp) == "text/vtt"


def vtt_type(resp):
    return resp["Content-Type"].split(";")[0]
