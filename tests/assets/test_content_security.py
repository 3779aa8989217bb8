"""Serving stored content never makes it active on the application's origin.

User bytes come back as ``text/plain`` (text) or an allow-listed media type (inline), anything
else as an attachment, and every content response (200, 206, 304, 416) carries ``nosniff`` and
``Content-Security-Policy: default-src 'none'; sandbox``. ``Range`` headers that cannot be
parsed are ignored and ranges beyond the file answer 416, never 500.
"""

from __future__ import annotations

import io

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from apps.assets.models import MediaAsset
from tests import media
from tests.assets.clients import client_as

pytestmark = pytest.mark.django_db(transaction=True)

CSP = "default-src 'none'; sandbox"
HTML = b"<!doctype html>\n<html><body><script>document.title = 'pwned'</script>hello</body></html>\n"




def _upload(client: APIClient, data: bytes, name: str):
    f = io.BytesIO(data)
    f.name = name
    return client.post(reverse("asset-list"), {"file": f}, format="multipart")


def _content_url(asset_id: str) -> str:
    return reverse("asset-content", args=[asset_id])


def _assert_inert(resp) -> None:
    assert resp["X-Content-Type-Options"] == "nosniff"
    assert resp["Content-Security-Policy"] == CSP


@pytest.mark.parametrize("name,data", [
    ("page.html", HTML),
    ("page.txt", b"<html><script>alert(document.cookie)</script></html>\n"),
    ("image.svg", b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>\n"),
])
def test_html_and_svg_uploads_are_served_as_inert_plain_text(name, data):
    up = client_as("up1", "uploader")
    r = _upload(up, data, name)
    assert r.status_code == 201, r.content
    resp = up.get(_content_url(r.json()["id"]))
    assert resp.status_code == 200
    assert resp["Content-Type"] == "text/plain; charset=utf-8"
    assert resp["Content-Disposition"].startswith("attachment")
    _assert_inert(resp)
    assert b"".join(resp.streaming_content) == data


def test_content_of_a_text_asset_stored_as_html_is_still_plain_text():
    """Rows stored before this rule (``mime_type`` text/html) are served inert too."""
    up = client_as("up1", "uploader")
    asset = MediaAsset.objects.get(pk=_upload(up, HTML, "page.html").json()["id"])
    MediaAsset.objects.filter(pk=asset.pk).update(mime_type="text/html")
    resp = up.get(_content_url(str(asset.pk)))
    assert resp["Content-Type"] == "text/plain; charset=utf-8"
    _assert_inert(resp)


def test_allow_listed_media_is_inline_and_other_media_is_an_attachment(tmp_path):
    up = client_as("up1", "uploader")
    jpeg = media.make_image(tmp_path / "p.jpg", "J", background="noise")
    tiff = tmp_path / "p.tiff"
    from PIL import Image

    Image.open(jpeg).save(tiff)
    inline = up.get(_content_url(_upload(up, jpeg.read_bytes(), "p.jpg").json()["id"]))
    assert inline["Content-Type"] == "image/jpeg"
    assert inline["Content-Disposition"].startswith("inline")
    _assert_inert(inline)
    r = _upload(up, tiff.read_bytes(), "p.tiff")
    assert r.status_code == 201, r.content
    other = up.get(_content_url(r.json()["id"]))
    assert other["Content-Type"] == "application/octet-stream"
    assert other["Content-Disposition"].startswith("attachment")
    _assert_inert(other)


def test_partial_not_modified_and_unsatisfiable_responses_carry_the_same_guards(tmp_path):
    up = client_as("up1", "uploader")
    jpeg = media.make_image(tmp_path / "p.jpg", "J", background="noise")
    body = _upload(up, jpeg.read_bytes(), "p.jpg").json()
    url = _content_url(body["id"])
    part = up.get(url, HTTP_RANGE="bytes=0-9")
    assert part.status_code == 206
    _assert_inert(part)
    same = up.get(url, HTTP_IF_NONE_MATCH=f'"{body["sha256"]}"')
    assert same.status_code == 304
    _assert_inert(same)
    beyond = up.get(url, HTTP_RANGE="bytes=999999999-")
    assert beyond.status_code == 416 and beyond["Content-Range"] == f"bytes */{body['size']}"
    assert beyond["Content-Type"] == "application/json"  # the error envelope, as the schema says (was text/html)
    assert beyond.json()["error"]["code"] == "range_not_satisfiable"
    _assert_inert(beyond)


@pytest.mark.parametrize("header", [
    "bytes=" + "9" * 5000 + "-",
    "bytes=0-" + "9" * 5000,
    "bytes=-" + "9" * 5000,
    "bytes=" + "1" * 5000 + "-" + "2" * 5000,
])
def test_ranges_with_thousands_of_digits_never_answer_500(header):
    up = client_as("up1", "uploader")
    data = b"plain text content\n" * 10
    url = _content_url(_upload(up, data, "a.txt").json()["id"])
    resp = up.get(url, HTTP_RANGE=header)
    assert resp.status_code in (200, 206, 416), resp.status_code
    if resp.status_code == 416:
        assert resp["Content-Range"] == f"bytes */{len(data)}"
    if resp.status_code == 206:
        assert b"".join(resp.streaming_content) == data[int(resp["Content-Range"].split()[1].split("-")[0]):]


@pytest.mark.parametrize("header", ["bytes=5-2", "items=0-1", "bytes=0-1,4-5", "bytes=abc", "bytes=-"])
def test_unparseable_or_unsupported_ranges_are_ignored_or_unsatisfiable(header):
    up = client_as("up1", "uploader")
    data = b"0123456789"
    url = _content_url(_upload(up, data, "a.txt").json()["id"])
    resp = up.get(url, HTTP_RANGE=header)
    assert resp.status_code in (200, 416)
    if resp.status_code == 200:
        assert b"".join(resp.streaming_content) == data


def test_a_separate_content_origin_gets_a_signed_redirect_and_serves_only_there(settings):
    settings.MEDIAINTEL_CONTENT_ORIGIN = "http://usercontent.localhost:8001"
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "usercontent.localhost"]
    up = client_as("up1", "uploader")
    asset_id = _upload(up, HTML, "page.html").json()["id"]
    redirect = up.get(_content_url(asset_id))
    assert redirect.status_code == 302
    location = redirect["Location"]
    assert location.startswith("http://usercontent.localhost:8001/content/")
    path = location.removeprefix("http://usercontent.localhost:8001")
    anonymous = APIClient()
    served = anonymous.get(path, HTTP_HOST="usercontent.localhost:8001")
    assert served.status_code == 200
    assert b"".join(served.streaming_content) == HTML
    assert served["Content-Type"] == "text/plain; charset=utf-8"
    _assert_inert(served)
    # the signed path is not answered on the application's own host, nor with a tampered token
    assert anonymous.get(path).status_code == 404
    assert anonymous.get(path[:-2] + "xx", HTTP_HOST="usercontent.localhost:8001").status_code == 404


def test_signed_content_urls_expire(settings):
    settings.MEDIAINTEL_CONTENT_ORIGIN = "http://usercontent.localhost:8001"
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "usercontent.localhost"]
    up = client_as("up1", "uploader")
    location = up.get(_content_url(_upload(up, b"text\n", "a.txt").json()["id"]))["Location"]
    settings.MEDIAINTEL_CONTENT_URL_TTL = -1
    path = location.removeprefix("http://usercontent.localhost:8001")
    assert APIClient().get(path, HTTP_HOST="usercontent.localhost:8001").status_code == 404
