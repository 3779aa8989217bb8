"""The console players show the transcript as captions: a ``<track kind="captions" default>`` loading
``/api/v1/assets/{id}/transcript.vtt``, in real Chromium (Debian's, through playwright), on a real
H.264 file served by the content endpoint, with the pages under a strict Content-Security-Policy.
"""

from __future__ import annotations

from typing import Any

import pytest

from apps.assets.services import ingest_local_file
from apps.insights.subtitles import Segment, cues_from_segments
from tests import media
from tests.moderation.test_console import TRANSCRIPT, add_video_insights, make_user, seed_moderation, video_item
from tests.moderation.test_console_browser import SHOTS, browser, login  # noqa: F401  (the module fixture)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

# no inline script, no eval, nothing from another origin: captions need none of them
STRICT_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
              "media-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")

EXPECTED = cues_from_segments([Segment(s, e, t) for s, e, t in TRANSCRIPT])

TRACK = "document.querySelector('main video').textTracks[0]"
# wait_for_function gets arrow functions: a bare expression would be eval'd in the page, which the CSP refuses


@pytest.fixture
def video_asset(tmp_path: Any, isolated_storage: Any, monkeypatch: Any) -> Any:
    """A real 9 s video in storage with the transcript rows the transcribe stage writes (no workers needed)."""
    seed_moderation()
    monkeypatch.setattr("apps.pipeline.services.start_pipeline", lambda pk, **kw: None)
    path = media.make_video(tmp_path / "harbour-tour.mp4", (("checker:teal", 3.0), ("noise:7", 3.0),
                                                          ("gradient", 3.0)), size=(320, 180), motion=False)
    asset = ingest_local_file(path, title="harbour-tour.mp4").asset
    asset.status = "ready"
    asset.save(update_fields=["status"])
    add_video_insights(asset, keyframes=False, visual=False)
    return asset


def strict(page: Any) -> list[str]:
    """Serve every console page with STRICT_CSP; returns the list that collects CSP violations."""
    violations: list[str] = []

    def add_csp(route: Any) -> None:
        resp = route.fetch()
        route.fulfill(response=resp, headers={**resp.headers, "content-security-policy": STRICT_CSP})

    page.route("**/console/**", add_csp)
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    return violations


def assert_captions_play(page: Any) -> None:
    page.wait_for_function(f"() => {TRACK} && {TRACK}.cues && {TRACK}.cues.length === {len(EXPECTED)}")
    assert page.evaluate(f"{TRACK}.kind") == "captions"
    assert page.evaluate(f"{TRACK}.mode") == "showing"
    cues = page.evaluate(f"[...{TRACK}.cues].map(c => [c.startTime, c.endTime, c.text])")
    assert cues == [[c.start, c.end, "\n".join(c.lines)] for c in EXPECTED]
    # seek into the threat: the active cue is that sentence
    cue = next(c for c in EXPECTED if "kill you" in c.text)
    page.wait_for_function("() => document.querySelector('main video').readyState >= 1")
    page.evaluate(f"document.querySelector('main video').currentTime = {cue.start + 0.5}")
    page.wait_for_function(f"() => {TRACK}.activeCues.length === 1")
    assert page.evaluate(f"{TRACK}.activeCues[0].text") == "\n".join(cue.lines)


def test_the_asset_player_shows_the_transcript_as_captions(browser, live_server, video_asset):  # noqa: F811
    make_user("mia")
    page = login(browser, live_server, "mia")
    violations = strict(page)
    page.goto(f"{live_server.url}/console/assets/{video_asset.pk}/")
    assert_captions_play(page)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "asset_captions.png"))
    # the policy was in force (the page's own inline script is refused by it); nothing the captions need was
    assert any("script-src" in v for v in violations), violations
    assert not [v for v in violations if "media-src" in v or "default-src" in v], violations
    page.context.close()


def test_the_review_player_shows_the_transcript_as_captions(browser, live_server, video_asset):  # noqa: F811
    item = video_item(asset=video_asset)
    make_user("mia")
    page = login(browser, live_server, "mia")
    violations = strict(page)
    page.goto(f"{live_server.url}/console/review/items/{item.pk}/")
    assert_captions_play(page)
    page.screenshot(path=str(SHOTS / "review_captions.png"))
    assert not [v for v in violations if "media-src" in v or "default-src" in v], violations
    page.context.close()
