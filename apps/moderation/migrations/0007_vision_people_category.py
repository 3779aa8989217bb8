from django.db import migrations


def seed(apps, schema_editor):
    Category = apps.get_model("moderation", "Category")
    Category.objects.update_or_create(
        code="context/people",
        defaults={"name": "People shown", "severity": 1, "builtin": True,
                  "description": "Persons detected in a frame; the score grows with how many (evidence: the "
                                 "count). Not in the default policy: add a rule to route on it."})


class Migration(migrations.Migration):
    dependencies = [("moderation", "0006_faces_categories")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
