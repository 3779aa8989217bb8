from django.db import migrations

FACE_CODES = ("people/face", "people/faces_count")


def seed(apps, schema_editor):
    from apps.moderation.taxonomy import TAXONOMY

    Category = apps.get_model("moderation", "Category")
    for code, name, severity, description in TAXONOMY:
        if code in FACE_CODES:
            Category.objects.update_or_create(code=code, defaults={"name": name, "severity": severity,
                                                                   "description": description, "builtin": True})


class Migration(migrations.Migration):
    dependencies = [("moderation", "0005_separation_of_duties")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
