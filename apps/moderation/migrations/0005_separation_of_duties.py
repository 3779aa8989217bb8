"""Separation of duties: redact moderator names from stored grounds; one open appeal per decision.

``redact_grounds``: human decisions used to store ``Moderator <username>: …`` as their ground,
which uploaders read; it becomes ``A moderator: …`` (the moderator stays in ``Decision.moderator``
and the audit trail). ``close_duplicate_appeals``: a decision with several open appeals (possible
before the index) keeps its oldest one open; the others are closed as decided with no outcome
(``upheld`` null) and a note naming the appeal they duplicate, so the unique index can be built
without deleting anything.
"""

import re

from django.db import migrations, models
from django.utils import timezone

_NAMED = re.compile(r"^Moderator [^:]*: ")


def redact_grounds(apps, schema_editor):
    Decision = apps.get_model("moderation", "Decision")
    for d in Decision.objects.filter(automated_decision=False, ground__startswith="Moderator ").only("id", "ground"):
        redacted = _NAMED.sub("A moderator: ", d.ground, count=1)
        if redacted != d.ground:
            Decision.objects.filter(pk=d.pk).update(ground=redacted)


def close_duplicate_appeals(apps, schema_editor):
    Appeal = apps.get_model("moderation", "Appeal")
    seen: dict = {}
    for a in Appeal.objects.filter(state="open").order_by("decision_id", "created_at", "id"):
        first = seen.setdefault(a.decision_id, a.pk)
        if first != a.pk:
            Appeal.objects.filter(pk=a.pk).update(
                state="decided", upheld=None, decided_at=timezone.now(),
                note=f"closed as a duplicate of open appeal {first} (one open appeal per decision)")


class Migration(migrations.Migration):
    dependencies = [("moderation", "0004_webhook_last_error_short")]
    operations = [
        migrations.RunPython(redact_grounds, migrations.RunPython.noop),
        migrations.RunPython(close_duplicate_appeals, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="appeal",
            constraint=models.UniqueConstraint(condition=models.Q(state="open"), fields=("decision",),
                                               name="one_open_appeal_per_decision"),
        ),
    ]
