"""Rebuild every chunk's ``tsv`` with its language's configuration.

Chunks written before ``search.0001`` were indexed with ``simple`` whatever their language, while
queries now parse with ``mediaintel_ts_config(language)``: an English transcript must be stemmed
the same way or "leaving" would no longer find "leaves". One UPDATE over the table (rows of any
size; the GIN index is maintained as it goes).
"""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [("search", "0001_ts_config_function")]
    operations = [
        migrations.RunSQL(
            "UPDATE insights_textchunk SET tsv = to_tsvector(mediaintel_ts_config(language), text) "
            "WHERE tsv IS DISTINCT FROM to_tsvector(mediaintel_ts_config(language), text)",
            migrations.RunSQL.noop,
        ),
    ]
