"""Content-addressed blobs in the configured django-storages backend: ``blobs/ab/cd/<sha256>``."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from django.core.files import File
from django.core.files.storage import FileSystemStorage, default_storage


class DurableFileSystemStorage(FileSystemStorage):
    """A local directory whose ``save()`` returns only once the bytes are on disk.

    ``FileSystemStorage`` leaves a new file (moved or written) in the page cache: after a power
    loss the asset row, committed by a durable PostgreSQL, could point at a missing or short blob.
    Here the file, then each directory from its own up to the storage root (new directory
    entries and the rename), are fsynced before ``save()`` returns, so an accepted upload is as
    durable as its row. ``fsync=False`` turns that off (throwaway test stores).
    """

    def __init__(self, *args: Any, fsync: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fsync = fsync

    def _save(self, name: str, content: Any) -> str:
        name = super()._save(name, content)
        if self.fsync:
            path = self.path(name)
            _fsync(path)
            root = os.path.abspath(self.location)
            folder = os.path.dirname(path)
            while True:
                _fsync(folder)
                if os.path.abspath(folder) == root or os.path.dirname(folder) == folder:
                    break
                folder = os.path.dirname(folder)
        return name


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def blob_key(sha256: str) -> str:
    return f"blobs/{sha256[:2]}/{sha256[2:4]}/{sha256}"


def derived_prefix(sha256: str) -> str:
    """Folder of the files derived from a content (``workers.tasks.decode.derived_key`` writes there)."""
    return f"derived/{sha256[:2]}/{sha256}"


def blob_exists(key: str) -> bool:
    return default_storage.exists(key)


def walk(prefix: str) -> Iterator[tuple[str, int]]:
    """``(key, size)`` of every file under ``prefix`` (local directories and S3 prefixes alike)."""
    try:
        dirs, files = default_storage.listdir(prefix)
    except FileNotFoundError:
        return
    for name in files:
        key = f"{prefix}/{name}"
        try:
            size = default_storage.size(key)
        except FileNotFoundError:
            continue
        yield key, size
    for d in dirs:
        yield from walk(f"{prefix}/{d}")


def delete_derived(sha256: str) -> list[str]:
    """Delete every file derived from a content; returns their keys."""
    gone = []
    for key, _size in list(walk(derived_prefix(sha256))):
        default_storage.delete(key)
        gone.append(key)
    root = local_path(derived_prefix(sha256))
    if root and os.path.isdir(root):
        import shutil

        shutil.rmtree(root, ignore_errors=True)
    return gone


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


class BlobRange:
    """Chunks of a byte range of a blob; ``close()`` releases the file or connection.

    An iterable with ``close`` is what ``StreamingHttpResponse`` closes when the response ends,
    even when the client goes away before the first chunk.
    """

    def __init__(self, chunks: Iterator[bytes], close: Callable[[], Any]) -> None:
        self._chunks, self.close = chunks, close

    def __iter__(self) -> Iterator[bytes]:
        return self._chunks


def _file_chunks(f: IO[bytes], start: int, length: int, chunk: int) -> Iterator[bytes]:
    f.seek(start)
    left = length
    while left > 0:
        data = f.read(min(chunk, left))
        if not data:
            break
        left -= len(data)
        yield data


def open_range(key: str, start: int, length: int, chunk: int = 256 * 1024) -> BlobRange:
    """Bytes ``[start, start + length)`` of a blob: opened now (errors surface here), read lazily.

    On S3 only that range is fetched, streamed from one ranged GET. (Reading django-storages'
    ``S3File`` would first download the whole object into a spool that, with the default
    ``max_memory_size`` of 0, never leaves memory: a 100-byte Range of a 4 GB video cost 4 GB.)
    """
    f = default_storage.open(key, "rb")
    obj = getattr(f, "obj", None)  # django-storages S3File: its boto3 Object (already HEAD-checked)
    if obj is not None and hasattr(obj, "get"):
        f.close()
        if length <= 0:
            return BlobRange(iter(()), lambda: None)
        body = obj.get(Range=f"bytes={start}-{start + length - 1}")["Body"]
        return BlobRange(body.iter_chunks(chunk), body.close)
    return BlobRange(_file_chunks(f, start, length, chunk), f.close)


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


_SHA = re.compile(r"[0-9a-f]{64}")


def worker_cache_dir() -> Path:
    """Where a worker keeps local copies of remote blobs (workers/blobcache.py, same layout)."""
    from django.conf import settings

    return Path(settings.MEDIAINTEL_WORKER_CACHE) / "blobs"


def cached_copies() -> Iterator[tuple[str, Path, int]]:
    """``(sha256, path, size)`` of every blob copy in this host's worker cache."""
    root = worker_cache_dir()
    if not root.is_dir():
        return
    for p in root.iterdir():
        if _SHA.fullmatch(p.name) and p.is_file():
            yield p.name, p, p.stat().st_size
