from django.db import migrations
from pgvector.django import VectorExtension


class Migration(migrations.Migration):
    """Every table that stores vectors or bit hashes needs pgvector."""

    dependencies: list = []
    operations = [VectorExtension()]
