"""Content-addressed blobs in the configured django-storages backend: ``blobs/ab/cd/<sha256>``."""

from __future__ import annotations

import os
from typing import IO

from django.core.files import File
from django.core.files.storage import default_storage


def blob_key(sha256: str) -> str:
    return f"blobs/{sha256[:2]}/{sha256[2:4]}/{sha256}"


class _TempFile(File):
    """A file on local disk; FileSystemStorage moves it instead of copying."""

    def temporary_file_path(self) -> str:
        return self.name


def put_blob(sha256: str, path: str, *, move: bool = False) -> str:
    """Store the file at ``path`` under its content key, once. Returns the key.

    A concurrent writer of the same content may win the race; the storage then hands us a
    renamed key, which is removed again (the content is already stored under the real key).
    """
    key = blob_key(sha256)
    if default_storage.exists(key):
        return key
    if move and hasattr(default_storage, "path"):
        with open(path, "rb") as f:
            saved = default_storage.save(key, _TempFile(f, name=path))
    else:
        with open(path, "rb") as f:
            saved = default_storage.save(key, File(f, name=os.path.basename(path)))
    if saved != key:
        default_storage.delete(saved)
    return key


def open_blob(key: str) -> IO[bytes]:
    return default_storage.open(key, "rb")


def blob_size(key: str) -> int:
    return default_storage.size(key)


def delete_blob(key: str) -> None:
    if default_storage.exists(key):
        default_storage.delete(key)


def local_path(key: str) -> str | None:
    """Filesystem path of a blob when the backend is local, else None (callers download)."""
    try:
        return default_storage.path(key)
    except NotImplementedError:
        return None
