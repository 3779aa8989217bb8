"""Search filters as SQL: asset-level (kind, moderation, uploader, dates, tags, speech) and chunk-level.

The filters go into the same statement as the vector ordering, so with pgvector's iterative
index scans (``hnsw.iterative_scan``) a selective filter still fills the page: the HNSW scan
keeps going until ``LIMIT`` rows passed the filter (or ``hnsw.max_scan_tuples`` is reached).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from apps.assets.models import MediaAsset
from apps.insights.models import Detection, Tag, TranscriptSegment
from mediacommon.vocabulary import expand

ASSETS = MediaAsset._meta.db_table
TAGS = Tag._meta.db_table
DETECTIONS = Detection._meta.db_table
SEGMENTS = TranscriptSegment._meta.db_table


@dataclass(frozen=True)
class Filters:
    """What a result must satisfy. ``visible_to`` restricts to one uploader's assets (non-moderators)."""

    kinds: tuple[str, ...] = ()
    moderation: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()  # chunk language, base code ("en" matches "en-GB")
    tags: tuple[str, ...] = ()  # image tags or object labels, any of them: raw (case-insensitive) or a
    # vocabulary concept and everything under it ("animal" matches a "German shepherd" tag)
    sources: tuple[str, ...] = ()  # transcript | ocr | text | tags
    has_speech: bool | None = None
    uploader_id: int | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    visible_to: int | None = None

    @property
    def needs_asset(self) -> bool:
        """Whether the SQL must join the asset table."""
        return bool(self.kinds or self.moderation or self.tags or self.has_speech is not None
                    or self.uploader_id is not None or self.created_after or self.created_before
                    or self.visible_to is not None)

    def asset_sql(self, a: str = "a") -> tuple[list[str], list[Any]]:
        """Conditions on the asset alias ``a`` and their parameters."""
        conds: list[str] = []
        params: list[Any] = []
        if self.visible_to is not None:
            conds.append(f"{a}.uploader_id = %s")
            params.append(self.visible_to)
        if self.kinds:
            conds.append(f"{a}.kind = ANY(%s)")
            params.append(list(self.kinds))
        if self.moderation:
            conds.append(f"{a}.moderation_state = ANY(%s)")
            params.append(list(self.moderation))
        if self.uploader_id is not None:
            conds.append(f"{a}.uploader_id = %s")
            params.append(self.uploader_id)
        if self.created_after:
            conds.append(f"{a}.created_at >= %s")
            params.append(self.created_after)
        if self.created_before:
            conds.append(f"{a}.created_at < %s")
            params.append(self.created_before)
        if self.tags:
            labels = [t.lower() for t in self.tags]
            concepts = sorted(set().union(*(expand(t) for t in self.tags)))
            conds.append(f"(EXISTS (SELECT 1 FROM {TAGS} t WHERE t.asset_id = {a}.id"  # noqa: S608
                         " AND (lower(t.label) = ANY(%s) OR t.canonical = ANY(%s)))"
                         f" OR EXISTS (SELECT 1 FROM {DETECTIONS} d WHERE d.asset_id = {a}.id"
                         " AND (lower(d.label) = ANY(%s) OR d.canonical = ANY(%s))))")
            params += [labels, concepts, labels, concepts]
        if self.has_speech is not None:
            exists = f"EXISTS (SELECT 1 FROM {SEGMENTS} s WHERE s.asset_id = {a}.id AND s.text <> '')"  # noqa: S608
            conds.append(exists if self.has_speech else f"NOT {exists}")
        return conds, params

    def chunk_sql(self, c: str = "c") -> tuple[list[str], list[Any]]:
        """Conditions on the text chunk alias ``c``."""
        conds: list[str] = []
        params: list[Any] = []
        if self.languages:
            conds.append(f"lower(split_part(split_part({c}.language, '-', 1), '_', 1)) = ANY(%s)")
            params.append([lang.lower().replace("_", "-").split("-")[0] for lang in self.languages])
        if self.sources:
            conds.append(f"{c}.source = ANY(%s)")
            params.append(list(self.sources))
        return conds, params
