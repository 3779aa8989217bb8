"""Upload handler that hashes while Django streams the body to a temp file (constant memory).

Over the byte limit it stops keeping data (``SkipFile``) and marks the request, so the
view answers 413 without the file ever being complete on disk.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.conf import settings
from django.core.files.uploadhandler import SkipFile, TemporaryFileUploadHandler


class HashingUploadHandler(TemporaryFileUploadHandler):
    chunk_size = 1024 * 1024

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        self._sha = hashlib.sha256()
        self._size = 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        self._size += len(raw_data)
        if self._size > settings.MEDIAINTEL_LIMITS["max_bytes"]:
            self.request.upload_too_large = True  # type: ignore[attr-defined]
            self.file.close()
            raise SkipFile()
        self._sha.update(raw_data)
        self.file.write(raw_data)
        return None

    def file_complete(self, file_size: int) -> Any:
        f = super().file_complete(file_size)
        f.sha256 = self._sha.hexdigest()
        return f
