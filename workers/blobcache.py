"""The worker host's cache of original blobs (remote storage: S3): bounded, LRU, multi-process safe.

A stage needs the original as a local file (``StageContext.media_path``). With local storage
that is the blob itself; with remote storage it is a copy under
``MEDIAINTEL_WORKER_CACHE/blobs/<sha256>``, shared by every worker process of the host.

Invariants:

* **Complete or absent.** A copy is downloaded to ``.tmp-*`` (held under an exclusive
  ``flock`` by its writer), then linked into place with ``os.link``, which never replaces an
  existing entry: of two processes fetching one blob the first link wins, the other discards
  its copy. Entries are immutable (content-addressed).
* **Never evicted while in use on this host.** A task using an entry holds a shared ``flock``
  on it until :meth:`BlobCache.release` (its end: the ``task_postrun`` signal, in its thread).
  Eviction takes an exclusive non-blocking ``flock`` first and skips what it cannot lock. A
  reader that locked an entry being unlinked at that moment sees ``st_nlink == 0`` and fetches
  again, so :meth:`BlobCache.path` never returns a path that is gone.
* **Bounded.** Each use touches the entry's mtime; :meth:`BlobCache.evict` (after every fetch
  and on the periodic sweep) removes entries unused for ``max_age`` seconds, then the least
  recently used until the total is at most ``max_bytes`` (entries in use count but stay).
  Downloads whose writer died (unlocked, untouched for a minute) are removed. One evictor at a time per host
  (``.evict.lock``); others skip.
* **Cleaned when assets go.** :meth:`BlobCache.drop_unreferenced` removes entries whose sha256
  no asset references; the ``sweep_blob_caches`` beat task broadcasts it to every worker
  (:func:`sweep`, run in each worker's main process).

No Django at import time: :func:`from_settings` and :func:`sweep` read settings when called.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

log = logging.getLogger(__name__)

SHA256 = re.compile(r"[0-9a-f]{64}")
TMP_PREFIX = ".tmp-"


@dataclass(frozen=True)
class Entry:
    sha256: str
    path: Path
    size: int
    used: float  # mtime: last use


class BlobCache:
    """One cache directory; one instance per process (it holds this process's shared locks)."""

    def __init__(self, root: str | os.PathLike[str], max_bytes: int, max_age: float,
                 dead_download_after: float = 60.0) -> None:
        self.root, self.max_bytes, self.max_age = Path(root), int(max_bytes), float(max_age)
        # a download is judged dead only when unlocked *and* untouched this long: between creating
        # its file and locking it, a live writer holds no lock yet
        self.dead_download_after = float(dead_download_after)
        self._held: dict[tuple[int, str], int] = {}  # (thread, sha256) → fd holding LOCK_SH
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ use
    def path(self, sha256: str, fetch: Callable[[IO[bytes]], None]) -> str:
        """Local path of the blob ``sha256``, fetched with ``fetch(file)`` when absent.

        The entry stays on disk at least until :meth:`release`.
        """
        if not SHA256.fullmatch(sha256):
            raise ValueError(f"not a sha256: {sha256!r}")
        target = self.root / sha256
        key = (threading.get_ident(), sha256)
        fetched = False
        with self._lock:
            if key in self._held:
                _touch(target)
                return str(target)
            self.root.mkdir(parents=True, exist_ok=True)
            for _ in range(5):
                fd = self._open_locked(target)
                if fd is not None:
                    self._held[key] = fd
                    _touch(target)
                    break
                self._download(target, fetch)
                fetched = True
            else:
                raise OSError(errno.EAGAIN, f"blob cache: {sha256} kept disappearing while being fetched")
        if fetched:
            self.evict()  # the new entry is held, so it stays; older ones make room
        return str(target)

    def release(self) -> None:
        """Drop the calling thread's shared locks (its task ended): those entries may go from now on.

        Per thread, so a thread pool's tasks release only their own; prefork children and the
        solo pool run one task at a time anyway."""
        me = threading.get_ident()
        with self._lock:
            mine = [k for k in self._held if k[0] == me]
            fds = [self._held.pop(k) for k in mine]
        for fd in fds:
            os.close(fd)

    def _open_locked(self, target: Path) -> int | None:
        """An fd with LOCK_SH on the live entry ``target``, or None when there is none."""
        try:
            fd = os.open(target, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            if os.fstat(fd).st_nlink == 0:  # unlinked by an evictor between open and lock
                os.close(fd)
                return None
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _download(self, target: Path, fetch: Callable[[IO[bytes]], None]) -> None:
        tmp = self.root / f"{TMP_PREFIX}{target.name[:16]}-{os.getpid()}-{threading.get_ident()}-{time.time_ns()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # "being written": the sweep leaves it alone
            with os.fdopen(os.dup(fd), "wb") as out:
                fetch(out)
                out.flush()
            os.fchmod(fd, 0o640)
            # atomic, and never replaces an entry someone may hold; when another process won the
            # race its copy (same bytes) stays and ours goes
            with contextlib.suppress(FileExistsError):
                os.link(tmp, target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            os.close(fd)

    # ------------------------------------------------------------------ bounds
    def entries(self) -> list[Entry]:
        out = []
        try:
            it = os.scandir(self.root)
        except FileNotFoundError:
            return []
        with it:
            for e in it:
                if SHA256.fullmatch(e.name):
                    try:
                        st = e.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue
                    out.append(Entry(e.name, Path(e.path), st.st_size, st.st_mtime))
        return out

    def evict(self, now: float | None = None) -> dict[str, int]:
        """Enforce ``max_age`` and ``max_bytes``; return what was removed and what is left."""
        stats = {"removed": 0, "removed_bytes": 0, "stale_downloads": 0, "kept": 0, "kept_bytes": 0, "in_use": 0}
        with self._evicting() as ok:
            if not ok:
                return stats
            now = time.time() if now is None else now
            stats["stale_downloads"] = self._remove_dead_downloads()
            entries = sorted(self.entries(), key=lambda e: e.used)  # least recently used first
            total = sum(e.size for e in entries)
            for e in entries:
                if now - e.used <= self.max_age and total <= self.max_bytes:
                    break  # sorted by use: everything after is newer, and the size fits
                if self._remove_unused(e.path):
                    total -= e.size
                    stats["removed"] += 1
                    stats["removed_bytes"] += e.size
                else:
                    stats["in_use"] += 1
            left = self.entries()
            stats["kept"], stats["kept_bytes"] = len(left), sum(e.size for e in left)
        return stats

    def drop(self, sha256s: Iterable[str]) -> int:
        """Remove these entries unless in use (an entry in use goes on a later sweep)."""
        n = 0
        for sha in sha256s:
            if SHA256.fullmatch(sha) and self._remove_unused(self.root / sha):
                n += 1
        return n

    def drop_unreferenced(self, referenced: Callable[[list[str]], set[str]], batch: int = 1000) -> int:
        """Remove entries whose sha256 ``referenced(names)`` does not return (deleted assets)."""
        names = [e.sha256 for e in self.entries()]
        gone: list[str] = []
        for i in range(0, len(names), batch):
            chunk = names[i:i + batch]
            keep = referenced(chunk)
            gone.extend(n for n in chunk if n not in keep)
        return self.drop(gone)

    def _remove_unused(self, path: Path) -> bool:
        """Unlink ``path`` if no process holds it (exclusive non-blocking lock); True if removed."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return False
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False  # in use by a running stage on this host
            try:
                os.unlink(path)
            except FileNotFoundError:
                return False
            return True
        finally:
            os.close(fd)  # a reader blocked on LOCK_SH now sees st_nlink == 0 and fetches again

    def _remove_dead_downloads(self) -> int:
        n, now = 0, time.time()
        for p in self.root.glob(f"{TMP_PREFIX}*"):
            try:
                if now - p.stat().st_mtime < self.dead_download_after:
                    continue
            except FileNotFoundError:
                continue
            if self._remove_unused(p):  # its writer's exclusive lock is gone: the writer died
                n += 1
        return n

    @contextlib.contextmanager
    def _evicting(self) -> Any:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.root / ".evict.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as e:
            log.warning("blob cache %s: cannot evict: %s", self.root, e)
            yield False
            return
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False  # another process of this host is evicting right now
                return
            yield True
        finally:
            os.close(fd)


def _touch(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.utime(path)


# ---------------------------------------------------------------------- this process's cache
_cache: BlobCache | None = None
_cache_lock = threading.Lock()


def from_settings() -> BlobCache:
    """This process's cache, configured by ``MEDIAINTEL_WORKER_CACHE`` and its bounds."""
    global _cache
    from django.conf import settings

    with _cache_lock:
        if _cache is None or _cache.root != Path(settings.MEDIAINTEL_WORKER_CACHE) / "blobs":
            _cache = BlobCache(Path(settings.MEDIAINTEL_WORKER_CACHE) / "blobs",
                               settings.MEDIAINTEL_WORKER_CACHE_MAX_BYTES, settings.MEDIAINTEL_WORKER_CACHE_MAX_AGE)
            _connect_release()
        return _cache


def media_path(sha256: str, storage_key: str) -> str:
    """The cached copy of a stored blob, held for the current task (see the module docstring)."""
    import shutil

    from apps.assets import storage

    def fetch(out: IO[bytes]) -> None:
        with storage.open_blob(storage_key) as src:
            shutil.copyfileobj(src, out, 1024 * 1024)

    return from_settings().path(sha256, fetch)


def release() -> None:
    """Release the entries this process holds (called when a task ends)."""
    if _cache is not None:
        _cache.release()


_release_connected = False


def _connect_release() -> None:
    global _release_connected
    if _release_connected:
        return
    from celery.signals import task_postrun

    task_postrun.connect(lambda **_: release(), weak=False)
    _release_connected = True


def sweep() -> dict[str, int]:
    """Drop copies of blobs no asset references any more, then enforce the bounds (this host)."""
    from django.db import close_old_connections, connection

    from apps.assets.models import MediaAsset

    cache = from_settings()

    def referenced(names: list[str]) -> set[str]:
        return set(MediaAsset.objects.filter(sha256__in=names).values_list("sha256", flat=True))

    close_old_connections()
    try:
        dropped = cache.drop_unreferenced(referenced)
    finally:
        connection.close()  # the worker's main process keeps no connection for its children to inherit
    stats = cache.evict()
    stats["dropped"] = dropped
    log.info("blob cache swept", extra={"blob_cache": stats})
    return stats
