"""The local blob store syncs a saved blob, and every directory up to its root, before save() returns."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.core.files import File
from django.core.files.base import ContentFile

from apps.assets import storage as blob_storage
from apps.assets.storage import DurableFileSystemStorage


@pytest.fixture
def synced(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Paths passed to fsync, in order (the real fsync still runs)."""
    seen: list[str] = []
    real = blob_storage._fsync

    def record(path: str) -> None:
        seen.append(os.path.abspath(path))
        real(path)

    monkeypatch.setattr(blob_storage, "_fsync", record)
    return seen


def test_written_blob_and_new_directories_are_synced(tmp_path: Path, synced: list[str]) -> None:
    store = DurableFileSystemStorage(location=str(tmp_path))
    name = store.save("blobs/ab/cd/abcd1234", ContentFile(b"x" * 1000))
    blob = tmp_path / name
    assert blob.read_bytes() == b"x" * 1000
    assert synced == [str(blob), str(tmp_path / "blobs/ab/cd"), str(tmp_path / "blobs/ab"),
                      str(tmp_path / "blobs"), str(tmp_path)]


def test_moved_temp_file_is_synced_too(tmp_path: Path, synced: list[str]) -> None:
    src = tmp_path / "upload.tmp"
    src.write_bytes(b"media bytes")
    store = DurableFileSystemStorage(location=str(tmp_path / "store"))
    with src.open("rb") as f:
        name = store.save("blobs/01/23/0123", blob_storage._TempFile(f, name=str(src)))
    assert not src.exists()  # moved (renamed), not copied
    assert (tmp_path / "store" / name).read_bytes() == b"media bytes"
    assert synced[0] == str(tmp_path / "store" / name) and synced[-1] == str(tmp_path / "store")


def test_fsync_can_be_turned_off(tmp_path: Path, synced: list[str]) -> None:
    store = DurableFileSystemStorage(location=str(tmp_path), fsync=False)
    with (tmp_path / "in.bin").open("wb+") as f:
        f.write(b"abc")
        f.seek(0)
        store.save("plain", File(f, name="in.bin"))
    assert (tmp_path / "plain").read_bytes() == b"abc" and synced == []
