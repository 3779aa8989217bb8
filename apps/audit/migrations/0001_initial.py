from django.db import migrations, models

APPEND_ONLY = """
CREATE OR REPLACE FUNCTION audit_event_append_only() RETURNS trigger AS $$
BEGIN
  -- TRUNCATE is allowed only to a session that declared maintenance (test database resets)
  IF TG_OP = 'TRUNCATE' AND current_setting('mediaintel.audit_maintenance', true) = 'on' THEN
    RETURN NULL;
  END IF;
  RAISE EXCEPTION 'audit_auditevent is append-only (% rejected)', TG_OP;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER audit_event_no_update BEFORE UPDATE OR DELETE ON audit_auditevent
  FOR EACH ROW EXECUTE FUNCTION audit_event_append_only();
CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_auditevent
  FOR EACH STATEMENT EXECUTE FUNCTION audit_event_append_only();
"""
DROP = """
DROP TRIGGER IF EXISTS audit_event_no_update ON audit_auditevent;
DROP TRIGGER IF EXISTS audit_event_no_truncate ON audit_auditevent;
DROP FUNCTION IF EXISTS audit_event_append_only();
"""


class Migration(migrations.Migration):
    initial = True
    dependencies: list = []

    operations = [
        migrations.CreateModel(
            name="AuditEvent",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("created_at", models.DateTimeField(db_index=True)),
                ("actor_type", models.CharField(choices=[("user", "User"), ("system", "System")], max_length=10)),
                ("actor_id", models.CharField(blank=True, max_length=64)),
                ("actor_label", models.CharField(max_length=150)),
                ("verb", models.CharField(db_index=True, max_length=64)),
                ("target_type", models.CharField(max_length=64)),
                ("target_id", models.CharField(db_index=True, max_length=64)),
                ("payload", models.JSONField(default=dict)),
                ("request_id", models.CharField(blank=True, max_length=64)),
                ("prev_hash", models.CharField(max_length=64)),
                ("hash", models.CharField(max_length=64, unique=True)),
            ],
            options={"ordering": ["id"],
                     "indexes": [models.Index(fields=["target_type", "target_id", "id"],
                                              name="audit_audit_target__idx")]},
        ),
        migrations.RunSQL(APPEND_ONLY, DROP),
    ]
