"""Deliveries record our own account of the last attempt (kind, duration, start), no receiver text.

Rows written before kept up to 500 bytes of the receiver's answer in ``last_error``: where an
answer had a status code, the text becomes ``HTTP <code>``; other texts (ours) are cut to 200
characters for the narrower column of 0004.
"""

from django.db import migrations, models


def scrub(apps, schema_editor):
    Delivery = apps.get_model("moderation", "WebhookDelivery")
    for d in Delivery.objects.exclude(last_error="").only("id", "last_error", "last_status_code").iterator():
        code = d.last_status_code
        if code is not None and not 200 <= code < 300:
            kind, text = ("redirect" if 300 <= code < 400 else "http_status"), f"HTTP {code}"
        elif d.last_error == "subscription disabled":
            kind, text = "disabled", d.last_error
        else:
            kind, text = "", d.last_error[:200]
        Delivery.objects.filter(pk=d.pk).update(last_error=text, last_error_kind=kind)


class Migration(migrations.Migration):
    dependencies = [("moderation", "0002_taxonomy_and_default_policy")]

    operations = [
        migrations.AddField(
            model_name="webhookdelivery", name="last_error_kind",
            field=models.CharField(blank=True, max_length=20, choices=[
                ("http_status", "non-2xx answer"), ("redirect", "redirect (not followed)"),
                ("timeout", "no answer by the deadline"), ("connect", "connection failed"), ("tls", "TLS failed"),
                ("protocol", "not a valid HTTP answer"), ("dns", "name does not resolve"),
                ("refused_target", "target address refused"), ("unfinished", "last attempt never finished"),
                ("disabled", "subscription disabled")])),
        migrations.AddField(model_name="webhookdelivery", name="last_duration_ms",
                            field=models.PositiveIntegerField(blank=True, null=True)),
        migrations.AddField(model_name="webhookdelivery", name="last_attempt_at",
                            field=models.DateTimeField(blank=True, null=True)),
        migrations.RunPython(scrub, migrations.RunPython.noop),
    ]
