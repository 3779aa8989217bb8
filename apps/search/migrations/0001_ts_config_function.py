"""``mediaintel_ts_config(language)``: the text-search configuration for a chunk's language.

One definition in the database, used by the ``text_embed`` stage when it fills ``tsv`` and by
every full-text query, so both sides always stem with the same configuration. Languages whose
configuration this PostgreSQL lacks, and unknown or empty languages, map to ``simple``.
"""

from django.db import migrations

# ISO 639-1 code → PostgreSQL text-search configuration (PostgreSQL 18 ships all of these).
LANGUAGE_CONFIGS = {
    "ar": "arabic", "hy": "armenian", "eu": "basque", "ca": "catalan", "da": "danish", "nl": "dutch",
    "en": "english", "et": "estonian", "fi": "finnish", "fr": "french", "de": "german", "el": "greek",
    "hi": "hindi", "hu": "hungarian", "id": "indonesian", "ga": "irish", "it": "italian", "lt": "lithuanian",
    "ne": "nepali", "no": "norwegian", "nb": "norwegian", "nn": "norwegian", "pt": "portuguese",
    "ro": "romanian", "ru": "russian", "sr": "serbian", "es": "spanish", "sv": "swedish", "ta": "tamil",
    "tr": "turkish", "yi": "yiddish",
}


def create_function(apps, schema_editor):
    with schema_editor.connection.cursor() as cur:
        cur.execute("SELECT cfgname FROM pg_ts_config")
        available = {r[0] for r in cur.fetchall()}
    keys = {**LANGUAGE_CONFIGS, **{cfg: cfg for cfg in LANGUAGE_CONFIGS.values()}}  # "en" and "english"
    body = " ".join(f"WHEN '{key}' THEN '{cfg}'::regconfig" for key, cfg in sorted(keys.items()) if cfg in available)
    schema_editor.execute(f"""
        CREATE OR REPLACE FUNCTION mediaintel_ts_config(lang text) RETURNS regconfig
        LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
          SELECT CASE lower(split_part(split_part(coalesce(lang, ''), '-', 1), '_', 1))
            {body}
            ELSE 'simple'::regconfig END
        $$""")


def drop_function(apps, schema_editor):
    schema_editor.execute("DROP FUNCTION IF EXISTS mediaintel_ts_config(text)")


class Migration(migrations.Migration):

    initial = True
    dependencies = [("insights", "0001_initial")]
    operations = [migrations.RunPython(create_function, drop_function)]
