"""Language-aware full-text pieces shared by the indexing stage and the query side.

Each chunk's ``tsv`` is built with ``mediaintel_ts_config(language)`` (migration
``search.0001``): ``english`` for ``en``, ``german`` for ``de``…, ``simple`` otherwise. A query
is parsed per row with the same function, so "leaving" finds "leaves" in an English transcript
while a German chunk is stemmed as German. The GIN index is used through a prefilter that ORs
the query parsed with every configuration (a superset); the exact per-row match follows.
"""

from __future__ import annotations

import functools

from django.db import connection

from apps.insights.models import TextChunk

TS_CONFIG_FN = "mediaintel_ts_config"


def ts_config_sql(language_sql: str) -> str:
    """SQL for the configuration of a language expression (a column or a placeholder)."""
    return f"{TS_CONFIG_FN}({language_sql})"


def refresh_tsv(asset_id: object, stage: str = "text_embed") -> int:
    """(Re)build ``tsv`` of an asset's chunks, each with its own language's configuration."""
    table = TextChunk._meta.db_table
    with connection.cursor() as cur:
        cur.execute(f"UPDATE {table} SET tsv = to_tsvector({ts_config_sql('language')}, text) "  # noqa: S608
                    "WHERE asset_id = %s AND stage = %s", [asset_id, stage])
        return cur.rowcount


@functools.lru_cache(maxsize=4)
def _configs_of(db_alias: str) -> tuple[str, ...]:
    with connection.cursor() as cur:
        cur.execute(f"SELECT DISTINCT {TS_CONFIG_FN}(cfgname)::text FROM pg_ts_config")  # noqa: S608
        return tuple(sorted(r[0] for r in cur.fetchall()))


def configs() -> tuple[str, ...]:
    """Every configuration ``mediaintel_ts_config`` can return (fixed per database)."""
    return _configs_of(connection.settings_dict["NAME"])


def config_for(language: str) -> str:
    """The configuration a language maps to (asks the database, so it can never disagree)."""
    with connection.cursor() as cur:
        cur.execute(f"SELECT {TS_CONFIG_FN}(%s)::text", [language])
        return cur.fetchone()[0]


def prefilter_sql(configs_: tuple[str, ...]) -> str:
    """An indexable ``tsquery`` expression: the query (one ``%s`` per config) under each config, ORed."""
    return "(" + " || ".join(f"websearch_to_tsquery('{c}'::regconfig, %s)" for c in configs_) + ")"
