"""The deletion of a version (alone or with its model) is an entry on its trail: one more value
the database accepts for ``activity_type``. The check only widens, so existing rows pass it.
Unapplying it fails once deletion entries exist: the trail cannot lose them.

On SQLite, changing a table's constraints rebuilds the table, and the rebuild drops its
triggers (0004's new column had already dropped them there): the append-only triggers of 0002
are created again afterwards. PostgreSQL alters the table in place and keeps them."""

from django.db import migrations, models

SQLITE_APPEND_ONLY = [
    """CREATE TRIGGER IF NOT EXISTS registry_activity_no_update BEFORE UPDATE ON registry_activity
       BEGIN SELECT RAISE(ABORT, 'registry_activity is append-only: UPDATE is not allowed'); END;""",
    """CREATE TRIGGER IF NOT EXISTS registry_activity_no_delete BEFORE DELETE ON registry_activity
       BEGIN SELECT RAISE(ABORT, 'registry_activity is append-only: DELETE is not allowed'); END;""",
]


def _append_only_on_sqlite(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        for statement in SQLITE_APPEND_ONLY:
            schema_editor.execute(statement)

ACTIVITY_TYPES = [
    ("APPLIED_TRANSITION", "Applied transition"),
    ("SYSTEM_TRANSITION", "System transition"),
    ("REQUESTED_TRANSITION", "Requested transition"),
    ("APPROVED_REQUEST", "Approved request"),
    ("REJECTED_REQUEST", "Rejected request"),
    ("CANCELLED_REQUEST", "Cancelled request"),
    ("NEW_COMMENT", "New comment"),
    ("DELETED_MODEL_VERSION", "Deleted model version"),
]


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0010_artifact_digest_index"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="activity",
            name="activity_type_valid",
        ),
        migrations.AlterField(
            model_name="activity",
            name="activity_type",
            field=models.CharField(choices=ACTIVITY_TYPES, max_length=32),
        ),
        migrations.AddConstraint(
            model_name="activity",
            constraint=models.CheckConstraint(
                condition=models.Q(activity_type__in=[value for value, _ in ACTIVITY_TYPES]),
                name="activity_type_valid",
            ),
        ),
        migrations.RunPython(_append_only_on_sqlite, migrations.RunPython.noop),
    ]
