"""An uploaded HTML page opened by a logged-in moderator in real Chromium runs no script.

The page would write to the application origin's localStorage and call the API with the
moderator's session; served as a ``text/plain`` attachment with ``CSP: sandbox`` it is only
downloaded.
"""

from __future__ import annotations

import pytest

from apps.assets.services import ingest_local_file
from tests.moderation.test_console import make_user, seed_moderation
from tests.moderation.test_console_browser import browser, login  # noqa: F401  (the module fixture)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

PAGE = b"""<!doctype html><html><body><script>
localStorage.setItem("pwned", "1");
fetch("/api/v1/assets/").then(r => localStorage.setItem("api", String(r.status)));
</script>hello</body></html>
"""


def test_a_moderator_opening_an_uploaded_html_page_runs_none_of_its_script(browser, live_server, tmp_path):  # noqa: F811
    seed_moderation()
    make_user("mia")
    path = tmp_path / "invoice.html"
    path.write_bytes(PAGE)
    asset = ingest_local_file(path, uploader=make_user("eve", "uploader")).asset
    page = login(browser, live_server, "mia")
    url = f"{live_server.url}/api/v1/assets/{asset.pk}/content"
    with page.expect_download() as download:
        try:
            page.goto(url)
        except Exception as e:  # a download aborts the navigation
            assert "ERR_ABORTED" in str(e) or "Download" in str(e), e
    assert download.value.suggested_filename == "invoice.html"
    page.goto(f"{live_server.url}/console/review/")
    page.wait_for_timeout(500)
    assert page.evaluate("localStorage.getItem('pwned')") is None
    assert page.evaluate("localStorage.getItem('api')") is None
