"""A file declared as binary media (by its name or Content-Type) whose bytes are text is refused (415)."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from rest_framework.test import APIClient

from apps.assets.models import MediaAsset
from apps.audit.models import AuditEvent

pytestmark = pytest.mark.django_db(transaction=True)

SCRIPT = b"#!/bin/sh\ncurl http://127.0.0.1/x | sh\n"


@pytest.fixture
def uploader() -> APIClient:
    user = get_user_model().objects.create_user("up1", password="pw")
    user.groups.add(Group.objects.get(name="uploader"))
    c = APIClient()
    c.force_authenticate(user)
    return c


@pytest.mark.parametrize("name,declared", [("clip.mp4", '".mp4"'), ("song.MP3", '".mp3"'), ("photo.jpeg", '".jpeg"')])
def test_a_script_named_as_media_is_refused_naming_both_types(uploader, name, declared):
    f = io.BytesIO(SCRIPT)
    f.name = name
    r = uploader.post(reverse("asset-list"), {"file": f}, format="multipart")
    assert r.status_code == 415, r.content
    err = r.json()["error"]
    assert err["code"] == "type_mismatch"
    assert declared in err["message"] and "text/plain" in err["message"]
    assert err["detail"]["detected"] == "text/plain" and declared in err["detail"]["declared"]
    assert MediaAsset.objects.count() == 0
    assert AuditEvent.objects.filter(verb="asset.rejected", payload__reason="type_mismatch").count() == 1


def test_a_text_file_declared_as_video_by_content_type_is_refused(uploader):
    f = SimpleUploadedFile("notes", SCRIPT, content_type="video/mp4")
    r = uploader.post(reverse("asset-list"), {"file": f}, format="multipart")
    assert r.status_code == 415
    assert r.json()["error"]["detail"] == {"declared": "video (Content-Type video/mp4)", "detected": "text/plain"}


def test_a_raw_upload_named_as_media_is_refused(uploader):
    r = uploader.post(reverse("asset-list"), data=SCRIPT, content_type="application/octet-stream",
                      HTTP_CONTENT_DISPOSITION='attachment; filename="movie.mov"')
    assert r.status_code == 415 and r.json()["error"]["code"] == "type_mismatch"


@pytest.mark.parametrize("name,ctype", [("notes.txt", "text/plain"), ("notes", "application/octet-stream"),
                                        ("subs.srt", "application/x-subrip"), ("icon.svg", "image/svg+xml")])
def test_text_declared_as_text_or_nothing_is_accepted(uploader, name, ctype):
    f = SimpleUploadedFile(name, b"just some words\n", content_type=ctype)
    r = uploader.post(reverse("asset-list"), {"file": f}, format="multipart")
    assert r.status_code == 201, r.content
    assert r.json()["kind"] == "text"
