"""The per-asset report: keyframes, timeline of flags, transcript, decisions and statements of reasons,
from the console and the API, moderators only; printable (print stylesheet, and Chromium prints it to PDF)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from apps.moderation import actions
from apps.moderation.models import Decision, Signal
from tests.moderation.helpers import api
from tests.moderation.test_console import (
    TRANSCRIPT,
    VIDEO_FRAMES,
    add_video_insights,
    client_for,
    make_user,
    review_for,
    seed_moderation,
)
from tests.moderation.test_console import _sha as sha

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def decided(db):
    """A video with insights, moderated into review, then rejected by a moderator."""
    from apps.assets.models import MediaAsset

    seed_moderation()
    asset = MediaAsset.objects.create(kind="video", sha256=sha(), size=10_000, mime_type="video/mp4",
                                      storage_key="blobs/x", title="harbour-tour.mp4", duration=12.0, width=1280,
                                      height=720, status="ready")
    add_video_insights(asset)
    item = review_for(asset)
    mod = make_user("mia", "moderator")
    actions.claim_review(item.pk, mod)
    actions.decide_review(item.pk, mod, "reject", reason_codes=["harassment/threat"], note="threat in the speech")
    return asset


def check_report(html: str, asset) -> None:
    # keyframes as inline JPEGs
    assert len(re.findall(r'<img src="data:image/jpeg;base64,[A-Za-z0-9+/=]+" alt="keyframe \d+"', html)) == len(
        VIDEO_FRAMES)
    # one lane per flagged category, one bar per timed signal
    timed = Signal.objects.filter(asset=asset, start__isnull=False)
    assert html.count('<rect class="flag"') == timed.count() > 0
    for code in set(timed.values_list("category_id", flat=True)):
        assert f'data-category="{code}"' in html
    for _s, _e, text in TRANSCRIPT:
        assert text in html
    d = Decision.objects.get(asset=asset, outcome="reject")
    assert "threat in the speech" in html
    # the statement of reasons in the DSA fields
    assert "Statement of reasons" in html
    for field, value in (("puid", str(d.pk)), ("category", "STATEMENT_CATEGORY_CYBER_VIOLENCE"),
                         ("automated_decision", "AUTOMATED_DECISION_NOT_AUTOMATED"),
                         ("content_type", "CONTENT_TYPE_VIDEO")):
        assert re.search(rf"<th>{field}</th><td>{re.escape(value)}</td>", html), field
    assert "<script" not in html
    assert "moderation/report.css" in html


def check_headers(resp) -> None:
    assert resp["Content-Security-Policy"].startswith("default-src 'none'; style-src 'self'; img-src data:")
    assert resp["X-Content-Type-Options"] == "nosniff"


def test_moderators_read_the_report_in_the_console(decided) -> None:
    resp = client_for(make_user("noah", "moderator")).get(f"/console/assets/{decided.pk}/report/")
    assert resp.status_code == 200 and resp["Content-Type"] == "text/html; charset=utf-8"
    check_report(resp.content.decode(), decided)
    check_headers(resp)
    page = client_for(make_user("ned", "moderator")).get(f"/console/assets/{decided.pk}/").content.decode()
    assert f'href="/console/assets/{decided.pk}/report/"' in page


def test_the_api_serves_the_same_report(decided) -> None:
    resp = api(make_user("noah", "moderator")).get(f"/api/v1/assets/{decided.pk}/report")
    assert resp.status_code == 200 and resp["Content-Type"] == "text/html; charset=utf-8"
    check_report(resp.content.decode(), decided)
    check_headers(resp)


def test_uploaders_and_unknown_assets_get_errors(decided) -> None:
    owner = make_user("olga", "uploader")
    decided.uploader = owner
    decided.save(update_fields=["uploader"])
    resp = api(owner).get(f"/api/v1/assets/{decided.pk}/report")
    assert resp.status_code == 403 and resp["Content-Type"] == "application/json"
    assert client_for(owner).get(f"/console/assets/{decided.pk}/report/").status_code == 403
    resp = api(make_user("noah", "moderator")).get("/api/v1/assets/00000000-0000-0000-0000-000000005eed/report")
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "not_found"


def test_an_asset_without_flags_or_decisions_still_has_a_report(db) -> None:
    from tests.moderation.helpers import make_asset

    seed_moderation()
    asset = make_asset(kind="image")
    html = client_for(make_user("noah", "moderator")).get(f"/console/assets/{asset.pk}/report/").content.decode()
    assert "No flags." in html and "No decision yet." in html


def test_the_print_stylesheet_drops_the_toolbar_and_sets_a_page() -> None:
    css = (ROOT / "apps/moderation/static/moderation/report.css").read_text()
    media_print = css[css.index("@media print"):]
    assert "@page" in media_print and ".toolbar { display: none; }" in media_print
