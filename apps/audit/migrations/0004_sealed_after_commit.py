"""Events are sealed after their writer commits: ``seq`` orders the chain, and the trigger allows the
one sealing UPDATE (chain fields set on an unsealed row, nothing else changed)."""

from django.db import migrations, models

# Existing events were chained in id order under the old writer lock.
BACKFILL = """
ALTER TABLE audit_auditevent DISABLE TRIGGER audit_event_no_update;
UPDATE audit_auditevent e SET seq = o.n FROM (SELECT id, row_number() OVER (ORDER BY id) AS n
  FROM audit_auditevent) o WHERE e.id = o.id;
ALTER TABLE audit_auditevent ENABLE TRIGGER audit_event_no_update;
"""

SEALABLE = """
CREATE OR REPLACE FUNCTION audit_event_append_only() RETURNS trigger AS $$
BEGIN
  -- TRUNCATE is allowed only to a session that declared maintenance (test database resets)
  IF TG_OP = 'TRUNCATE' AND current_setting('mediaintel.audit_maintenance', true) = 'on' THEN
    RETURN NULL;
  END IF;
  -- sealing: an unsealed event gets its chain fields once; nothing else may change
  IF TG_OP = 'UPDATE' AND OLD.hash IS NULL AND OLD.seq IS NULL
     AND NEW.hash IS NOT NULL AND NEW.seq IS NOT NULL
     AND (to_jsonb(NEW) - 'hash' - 'prev_hash' - 'seq') = (to_jsonb(OLD) - 'hash' - 'prev_hash' - 'seq') THEN
    RETURN NEW;
  END IF;
  RAISE EXCEPTION 'audit_auditevent is append-only (% rejected)', TG_OP;
END $$ LANGUAGE plpgsql;
"""

APPEND_ONLY = """
CREATE OR REPLACE FUNCTION audit_event_append_only() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'TRUNCATE' AND current_setting('mediaintel.audit_maintenance', true) = 'on' THEN
    RETURN NULL;
  END IF;
  RAISE EXCEPTION 'audit_auditevent is append-only (% rejected)', TG_OP;
END $$ LANGUAGE plpgsql;
"""


class Migration(migrations.Migration):

    dependencies = [
        ('audit', '0003_target_id_fits_names'),
    ]

    operations = [
        migrations.AddField(
            model_name='auditevent',
            name='seq',
            field=models.BigIntegerField(null=True, unique=True),
        ),
        migrations.RunSQL(BACKFILL, migrations.RunSQL.noop),
        migrations.RunSQL(SEALABLE, APPEND_ONLY),
        migrations.AlterField(
            model_name='auditevent',
            name='hash',
            field=models.CharField(max_length=64, null=True, unique=True),
        ),
        migrations.AlterField(
            model_name='auditevent',
            name='prev_hash',
            field=models.CharField(blank=True, default='', max_length=64),
        ),
        migrations.AddIndex(
            model_name='auditevent',
            index=models.Index(condition=models.Q(('hash__isnull', True)), fields=['id'], name='audit_unsealed'),
        ),
    ]
