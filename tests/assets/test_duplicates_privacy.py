"""Uploading bytes another user already uploaded reveals nothing of that user's asset."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.urls import reverse
from rest_framework.test import APIClient

from apps.assets.models import MediaAsset
from tests import media
from tests.assets.clients import client_as

pytestmark = pytest.mark.django_db(transaction=True)




def _upload(client: APIClient, data: bytes, name: str, **fields: str):
    f = io.BytesIO(data)
    f.name = name
    return client.post(reverse("asset-list"), {"file": f, **fields}, format="multipart")


def test_a_second_uploader_of_the_same_bytes_gets_their_own_asset_and_nothing_of_the_first(tmp_path, _no_pipeline):
    data = media.make_image(tmp_path / "p.jpg", "SECRET", background="noise").read_bytes()
    alice, bob = client_as("alice", "uploader"), client_as("bob", "uploader")
    a = _upload(alice, data, "alice-private-leak.jpg", title="Alice's evidence", metadata='{"case": "A-17"}')
    assert a.status_code == 201
    b = _upload(bob, data, "bob.jpg")
    assert b.status_code == 201, b.content  # indistinguishable from a first upload
    body = b.json()
    assert body["duplicate"] is False and body["id"] != a.json()["id"]
    assert (body["uploader"], body["filename"], body["title"], body["metadata"]) == ("bob", "bob.jpg", "bob", {})
    assert body["moderation_state"] == "pending"
    assert "alice" not in str(body).lower() and "A-17" not in str(body)
    # Bob cannot reach Alice's asset, and Alice's row is unchanged
    assert bob.get(reverse("asset-detail", args=[a.json()["id"]])).status_code == 404
    assert [x["id"] for x in bob.get(reverse("asset-list")).json()["results"]] == [body["id"]]
    assert MediaAsset.objects.get(pk=a.json()["id"]).title == "Alice's evidence"
    # one stored blob for both, each asset's pipeline started
    assert {x.storage_key for x in MediaAsset.objects.all()} == {MediaAsset.objects.get(pk=body["id"]).storage_key}
    blob_dir = Path(default_storage.path(MediaAsset.objects.get(pk=body["id"]).storage_key)).parent
    assert len(list(blob_dir.iterdir())) == 1
    assert len(_no_pipeline) == 2


def test_the_same_uploader_twice_still_gets_the_first_asset(tmp_path):
    data = b"some words for a text asset\n"
    alice = client_as("alice", "uploader")
    first = _upload(alice, data, "a.txt")
    again = _upload(alice, data, "b.txt")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["duplicate"] is True and again.json()["id"] == first.json()["id"]


def test_moderators_see_both_uploaders_assets():
    data = b"shared text\n"
    _upload(client_as("alice", "uploader"), data, "a.txt")
    _upload(client_as("bob", "uploader"), data, "b.txt")
    listed = client_as("mod", "moderator").get(reverse("asset-list")).json()["results"]
    assert sorted(x["uploader"] for x in listed) == ["alice", "bob"]
