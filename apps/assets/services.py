"""The ingest service: validate, store once by content, record, start the pipeline.

Used by the upload API and the ``ingest`` command alike. A rejected file leaves no blob,
no row and no temp file behind; the same bytes twice from one uploader give one asset, from
two uploaders two assets (each sees only their own) over one blob. A failure after the blob
was written removes a blob nothing references; ``manage.py gc`` finds whatever a crash left.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.db import IntegrityError, transaction

from apps.assets import storage
from apps.assets.models import MediaAsset, Source
from apps.assets.probe import probe_file
from apps.assets.sniff import Rejected, check_declared, sanitize_filename, sniff
from apps.audit.services import Actor, record
from apps.events.services import publish
from apps.pipeline import services as pipeline
from mediacommon.metrics import ASSETS_INGESTED

log = logging.getLogger(__name__)
CHUNK = 1024 * 1024

PROBE_FIELDS = ("duration", "width", "height", "fps", "video_codec", "audio_codec", "sample_rate", "channels",
                "frame_count", "has_audio")


@dataclass
class IngestResult:
    asset: MediaAsset
    duplicate: bool


def hash_file(path: str | Path) -> tuple[str, int]:
    h, n = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            n += len(chunk)
    return h.hexdigest(), n


def spool(stream: IO[bytes], max_bytes: int) -> tuple[str, str, int]:
    """Copy a stream to a temp file while hashing; (path, sha256, size). Over ``max_bytes`` → 413."""
    h, n = hashlib.sha256(), 0
    fd, path = tempfile.mkstemp(prefix="ingest-", dir=settings.FILE_UPLOAD_TEMP_DIR)
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := stream.read(CHUNK):
                n += len(chunk)
                if n > max_bytes:
                    raise Rejected(413, "too_large", f"The file exceeds the limit of {max_bytes} bytes.")
                h.update(chunk)
                out.write(chunk)
    except BaseException:
        os.unlink(path)
        raise
    return path, h.hexdigest(), n


def _text_checks(path: str) -> dict[str, Any]:
    lim = settings.MEDIAINTEL_LIMITS["max_text_bytes"]
    size = os.path.getsize(path)
    if size > lim:
        raise Rejected(413, "too_large", f"Text files are limited to {lim} bytes.")
    with open(path, "rb") as f:
        data = f.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise Rejected(422, "not_utf8", f"The text is not valid UTF-8 (byte {e.start}).") from None
    return {"characters": len(text), "lines": text.count("\n") + 1}


def ingest_path(path: str, *, sha256: str, size: int, filename: str = "", title: str = "",
                external_id: str = "", metadata: dict[str, Any] | None = None, uploader: Any = None,
                source: str = Source.API, kind_hint: str | None = None, move: bool = False,
                declared_type: str = "") -> IngestResult:
    """Ingest the local file at ``path`` whose hash and size are already known.

    With ``move=True`` the file is consumed (moved into storage or deleted). ``declared_type``
    is the client's Content-Type for the file: like the name's extension it never decides the
    type, but a file declared as binary media whose bytes are text is refused (415).
    """
    actor = Actor.user(uploader) if uploader is not None else Actor.system(f"ingest:{source}")
    clean_name = sanitize_filename(filename)
    try:
        existing = _own_copy(sha256, uploader, source)
        if existing is not None:
            return IngestResult(existing, duplicate=True)
        max_bytes = settings.MEDIAINTEL_LIMITS["max_bytes"]
        if size > max_bytes:
            raise Rejected(413, "too_large", f"The file exceeds the limit of {max_bytes} bytes.")
        sniffed = sniff(path, clean_name)
        check_declared(sniffed, clean_name, declared_type)
        if kind_hint and sniffed.kind != kind_hint:
            raise Rejected(415, "wrong_kind", f"Expected {kind_hint}, but the content is {sniffed.kind} "
                                              f"({sniffed.mime}).")
        info = _text_checks(path) if sniffed.kind == "text" else probe_file(path, sniffed.kind)
        had_blob = storage.blob_exists(storage.blob_key(sha256))
        key = storage.put_blob(sha256, path, move=move)
        fields = {f: info.get(f) for f in PROBE_FIELDS if info.get(f) is not None}
        try:
            with transaction.atomic():
                asset = MediaAsset.objects.create(
                    kind=sniffed.kind, sha256=sha256, size=size, mime_type=sniffed.mime, filename=clean_name,
                    title=(title or Path(clean_name).stem)[:500], external_id=external_id[:255],
                    metadata=metadata or {}, storage_key=key, probe=info, uploader=uploader, source=source,
                    **fields,
                )
                record("asset.ingested", target_type="asset", target_id=asset.pk, actor=actor,
                       payload={"sha256": sha256, "kind": asset.kind, "mime": asset.mime_type, "size": size,
                                "filename": clean_name, "source": source})
                publish("asset.ingested", {"asset": asset.pk, "kind": asset.kind, "mime": asset.mime_type,
                                           "size": size, "sha256": sha256, "source": source}, asset_id=asset.pk)
                _start_pipeline_on_commit(asset)
        except IntegrityError:
            # a concurrent upload of the same bytes by the same uploader won: answer with its asset
            won = _own_copy(sha256, uploader, source)
            if won is None:
                raise
            return IngestResult(won, duplicate=True)
        except BaseException:
            if not had_blob:
                _drop_unreferenced_blob(key)
            raise
        return IngestResult(asset, duplicate=False)
    except Rejected as e:
        record("asset.rejected", target_type="upload", target_id=sha256, actor=actor,
               payload={"reason": e.code, "message": e.message, "filename": clean_name, "size": size})
        raise
    finally:
        if move and os.path.exists(path):
            os.unlink(path)


def _own_copy(sha256: str, uploader: Any, source: str) -> MediaAsset | None:
    """The asset of these bytes that this uploader (or, unowned, a command) already has: never another's."""
    qs = MediaAsset.objects.filter(sha256=sha256)
    qs = qs.filter(uploader=uploader) if uploader is not None else qs.filter(uploader__isnull=True, source=source)
    return qs.first()


def _drop_unreferenced_blob(key: str) -> None:
    """Remove a blob this ingest wrote when no row references it (best effort: ``gc`` is the backstop)."""
    try:
        if not MediaAsset.objects.filter(storage_key=key).exists():
            storage.delete_blob(key)
    except Exception:  # the database or storage is down: gc will find the orphan
        log.warning("could not remove the unreferenced blob %s", key, exc_info=True)


def ingest_stream(stream: IO[bytes], **kwargs: Any) -> IngestResult:
    """Spool a stream to a temp file (hashing as it goes), then :func:`ingest_path`."""
    path, sha, size = spool(stream, settings.MEDIAINTEL_LIMITS["max_bytes"])
    return ingest_path(path, sha256=sha, size=size, move=True, **kwargs)


def ingest_local_file(path: str | Path, **kwargs: Any) -> IngestResult:
    """Ingest a file from the local filesystem (the file itself is left untouched)."""
    p = Path(path)
    size = p.stat().st_size
    max_bytes = settings.MEDIAINTEL_LIMITS["max_bytes"]
    if size > max_bytes:
        raise Rejected(413, "too_large", f"The file exceeds the limit of {max_bytes} bytes.")
    fd, tmp = tempfile.mkstemp(prefix="ingest-", dir=settings.FILE_UPLOAD_TEMP_DIR)
    os.close(fd)
    try:
        shutil.copyfile(p, tmp)  # a stable snapshot: the source may change while we work
    except BaseException:
        os.unlink(tmp)
        raise
    sha, n = hash_file(tmp)
    kwargs.setdefault("filename", p.name)
    return ingest_path(tmp, sha256=sha, size=n, move=True, **kwargs)


def _start_pipeline_on_commit(asset: MediaAsset) -> None:
    """Once the asset's row is committed: count it (``mediaintel_assets_ingested_total``) and plan its stages."""
    def start() -> None:
        ASSETS_INGESTED.labels(asset.kind).inc()
        pipeline.start_pipeline(asset.pk)

    transaction.on_commit(start)


def purge_content(sha256: str, key: str) -> None:
    """Delete the blob, the derived files and worker-cache copies of content no asset references."""
    storage.delete_blob(key)
    storage.delete_derived(sha256)
    _evict_from_worker_caches([sha256])


def _evict_from_worker_caches(shas: list[str]) -> None:
    try:
        from mediaintel.celery import app

        app.control.broadcast("mediaintel_evict_blobs", arguments={"sha256s": shas})
    except Exception:  # no broker: workers' copies are left to `manage.py gc` on their hosts
        log.warning("could not ask workers to evict %d cached blob(s)", len(shas), exc_info=True)
