"""The per-asset report in real Chromium: thumbnails load, the print stylesheet hides the toolbar, and
the browser prints it to a PDF (Debian's chromium through playwright, never `playwright install`)."""

from __future__ import annotations

import re

import pytest

from tests.moderation.test_asset_report import decided  # noqa: F401  (the fixture)
from tests.moderation.test_console import make_user
from tests.moderation.test_console_browser import SHOTS, browser, login  # noqa: F401  (the module fixture)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


def test_the_report_prints_to_pdf(browser, live_server, decided):  # noqa: F811
    make_user("noah", "moderator")
    page = login(browser, live_server, "noah")
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(f"{live_server.url}/console/assets/{decided.pk}/report/")
    page.wait_for_function("() => [...document.querySelectorAll('.frames img')].every(i => i.complete && "
                           "i.naturalWidth > 0)")
    assert page.locator(".frames img").count() == 4
    assert page.locator("svg.timeline rect.flag").count() >= 1
    assert page.locator(".toolbar").is_visible()
    # styled and complete under the page's own strict CSP
    assert page.evaluate("getComputedStyle(document.querySelector('.report')).maxWidth") == "860px"
    assert violations == []
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "asset_report.png"), full_page=True)
    page.emulate_media(media="print")
    assert not page.locator(".toolbar").is_visible()
    pdf = page.pdf(format="A4", print_background=True)
    (SHOTS / "asset_report.pdf").write_bytes(pdf)
    assert pdf.startswith(b"%PDF-")
    assert len(re.findall(rb"/Type\s*/Page[^s]", pdf)) >= 1
    page.context.close()
