"""``last_error`` holds a short message of ours (separate from 0003 so the scrub has committed)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("moderation", "0003_webhook_attempt_record")]

    operations = [
        migrations.AlterField(model_name="webhookdelivery", name="last_error",
                              field=models.CharField(blank=True, max_length=200)),
    ]
