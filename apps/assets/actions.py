"""Audited actions on assets: deletion.

Invariant: each function here owns its transaction and writes its audit record inside it, so the
change and its record commit together or not at all. The asset API (``DELETE /api/v1/assets/ID``)
calls it; the Django admin is read-only for assets.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.assets import services
from apps.assets.models import MediaAsset
from apps.audit.services import Actor, record
from apps.events.services import publish


def delete_asset(asset: MediaAsset, *, actor: Actor) -> None:
    """Remove an asset, its derived rows (cascade) and, once no asset holds the same content, every byte of it.

    That is the blob, every file derived from the content (keyframe JPEGs, the 16 kHz audio
    track, the extracted text: ``derived/<sha>/``) on the configured storage backend, and the
    copies in worker caches (a broadcast to every worker; ``manage.py gc`` on a worker host
    removes copies a worker missed). Storage is cleaned after the commit; a failure there
    leaves orphans for ``gc``, never a row without its bytes.
    """
    key, sha, pk = asset.storage_key, asset.sha256, asset.pk
    with transaction.atomic():
        record("asset.deleted", target_type="asset", target_id=pk, actor=actor,
               payload={"sha256": sha, "kind": asset.kind, "title": asset.title, "at": timezone.now()})
        asset.delete()
        publish("asset.deleted", {"asset": pk}, asset_id=pk)
        if not MediaAsset.objects.filter(Q(storage_key=key) | Q(sha256=sha)).exists():
            transaction.on_commit(lambda: services.purge_content(sha, key))
