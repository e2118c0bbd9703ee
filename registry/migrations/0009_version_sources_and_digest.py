"""Versions learn where their files come from and what they hold, outside their tags.

- ``model_id`` (MLflow 3's logged model), ``storage_location`` (reference mode) and
  ``copied_from`` (a copy of another version of this registry).
- The artifact digest moves from the reserved version tag ``registry.artifacts.digest`` and from
  the manifest row to ``ModelVersion.artifact_digest``: version tags are what users set (the
  ``mlflow`` client compares them), and the digest is a fact of the version (docs/architecture.md,
  "Artifacts"). The old tags are deleted once their value is copied.
"""

import django.db.models.deletion
from django.db import migrations, models

DIGEST_TAG = "registry.artifacts.digest"


def digest_to_column(apps, schema_editor):
    ModelVersion = apps.get_model("registry", "ModelVersion")
    ModelVersionManifest = apps.get_model("registry", "ModelVersionManifest")
    ModelVersionTag = apps.get_model("registry", "ModelVersionTag")
    digests = ModelVersionManifest.objects.filter(model_version=models.OuterRef("pk")).values(
        "digest"
    )[:1]
    ModelVersion.objects.filter(manifest__isnull=False).update(
        artifact_digest=models.Subquery(digests)
    )
    ModelVersionTag.objects.filter(key=DIGEST_TAG).delete()


def digest_to_tag(apps, schema_editor):
    ModelVersion = apps.get_model("registry", "ModelVersion")
    ModelVersionManifest = apps.get_model("registry", "ModelVersionManifest")
    ModelVersionTag = apps.get_model("registry", "ModelVersionTag")
    for version in ModelVersion.objects.exclude(artifact_digest="").iterator():
        ModelVersionManifest.objects.filter(model_version=version).update(
            digest=version.artifact_digest
        )
        ModelVersionTag.objects.update_or_create(
            model_version=version, key=DIGEST_TAG, defaults={"value": version.artifact_digest}
        )


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0008_tag_key_value_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="modelversion",
            name="artifact_digest",
            field=models.CharField(blank=True, default="", max_length=71),
        ),
        migrations.AddField(
            model_name="modelversion",
            name="copied_from",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="registry.modelversion",
            ),
        ),
        migrations.AddField(
            model_name="modelversion",
            name="model_id",
            field=models.CharField(blank=True, default="", max_length=256),
        ),
        migrations.AddField(
            model_name="modelversion",
            name="storage_location",
            field=models.TextField(blank=True, default=""),
        ),
        migrations.RunPython(digest_to_column, digest_to_tag),
        # A default, so that unapplying the removal can add the column back to existing rows
        # (digest_to_tag then fills it in).
        migrations.AlterField(
            model_name="modelversionmanifest",
            name="digest",
            field=models.CharField(default="", max_length=71),
        ),
        migrations.RemoveField(
            model_name="modelversionmanifest",
            name="digest",
        ),
    ]
