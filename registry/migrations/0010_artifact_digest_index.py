"""The index behind ``artifact_digest = 'sha256:…'`` searches, built without blocking writes to
the versions table on PostgreSQL (see 0008 for the concurrent build and how to recover one that
was interrupted)."""

from django.db import migrations, models

from registry.migrations._concurrent import AddIndexConcurrentlyOnPostgres


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("registry", "0009_version_sources_and_digest"),
    ]

    operations = [
        AddIndexConcurrentlyOnPostgres(
            model_name="modelversion",
            index=models.Index(
                condition=~models.Q(artifact_digest=""),
                fields=["artifact_digest"],
                name="mv_artifact_digest",
            ),
        ),
    ]
