from django.db import migrations


def seed(apps, schema_editor):
    from apps.moderation.taxonomy import DEFAULT_RULES, TAXONOMY

    Category = apps.get_model("moderation", "Category")
    Policy = apps.get_model("moderation", "Policy")
    PolicyVersion = apps.get_model("moderation", "PolicyVersion")
    for code, name, severity, description in TAXONOMY:
        Category.objects.update_or_create(code=code, defaults={"name": name, "severity": severity,
                                                               "description": description, "builtin": True})
    policy, _ = Policy.objects.get_or_create(name="default")
    if policy.active_version_id is None:
        v = PolicyVersion.objects.create(policy=policy, number=1, rules=DEFAULT_RULES, note="built-in default")
        policy.active_version = v
        policy.save()


class Migration(migrations.Migration):
    dependencies = [("moderation", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
