"""The history of aliases and stages is append-only in the database, like the activity trail
(0002, 0005), and begins with what each model's aliases and stages name when this runs: one
``BASELINE`` entry each, so "as of T" answers from then on are complete.

Approvals given before approvals recorded a digest are taken as given for the bytes their
version holds now (a version's managed copy never changed before this), so they still count."""

from django.db import migrations
from django.db.models import OuterRef, Subquery
from django.utils import timezone

POSTGRES_UP = """
CREATE TRIGGER registry_pointermove_append_only
    BEFORE UPDATE OR DELETE ON registry_pointermove
    FOR EACH ROW EXECUTE FUNCTION registry_activity_append_only();
"""
POSTGRES_DOWN = "DROP TRIGGER IF EXISTS registry_pointermove_append_only ON registry_pointermove;"
SQLITE_UP = [
    """CREATE TRIGGER registry_pointermove_no_update BEFORE UPDATE ON registry_pointermove
       BEGIN SELECT RAISE(ABORT, 'registry_pointermove is append-only: UPDATE is not allowed'); END;""",
    """CREATE TRIGGER registry_pointermove_no_delete BEFORE DELETE ON registry_pointermove
       BEGIN SELECT RAISE(ABORT, 'registry_pointermove is append-only: DELETE is not allowed'); END;""",
]
SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS registry_pointermove_no_update;",
    "DROP TRIGGER IF EXISTS registry_pointermove_no_delete;",
]


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        statements = statements_by_vendor[schema_editor.connection.vendor]
        for statement in [statements] if isinstance(statements, str) else statements:
            schema_editor.execute(statement)

    return run


def _baseline(apps, schema_editor):
    """What each alias and stage names now, as the first entry of its history."""
    alias_model = apps.get_model("registry", "RegisteredModelAlias")
    version_model = apps.get_model("registry", "ModelVersion")
    move_model = apps.get_model("registry", "PointerMove")
    now = timezone.now()
    entries = [
        move_model(
            registered_model_id=alias.registered_model_id,
            model_name=alias.registered_model.name,
            kind="ALIAS",
            pointer=alias.alias,
            to_version=alias.model_version.version,
            artifact_digest=alias.model_version.artifact_digest,
            cause="BASELINE",
            created_at=now,
        )
        for alias in alias_model.objects.select_related("registered_model", "model_version")
    ]
    entries += [
        move_model(
            registered_model_id=version.registered_model_id,
            model_name=version.registered_model.name,
            kind="STAGE",
            pointer=version.current_stage,
            to_version=version.version,
            artifact_digest=version.artifact_digest,
            cause="BASELINE",
            created_at=now,
        )
        for version in version_model.objects.exclude(current_stage="None").select_related(
            "registered_model"
        )
    ]
    move_model.objects.bulk_create(entries, batch_size=1000)
    approval_model = apps.get_model("registry", "TransitionApproval")
    approval_model.objects.update(
        artifact_digest=Subquery(
            version_model.objects.filter(
                transition_requests__approvals=OuterRef("pk")
            ).values("artifact_digest")[:1]
        )
    )


class Migration(migrations.Migration):
    dependencies = [("registry", "0015_governed_aliases")]

    operations = [
        migrations.RunPython(_baseline, migrations.RunPython.noop),
        migrations.RunPython(
            _run({"postgresql": POSTGRES_UP, "sqlite": SQLITE_UP}),
            _run({"postgresql": POSTGRES_DOWN, "sqlite": SQLITE_DOWN}),
        ),
    ]
