"""The history of version tags (docs/decisions/0022-version-tag-history.md), append-only in the
database like the trail and the history of pointers (0002, 0016). It begins empty: the tags a
version carries when this runs were set before the history began."""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

POSTGRES_UP = """
CREATE TRIGGER registry_versiontagchange_append_only
    BEFORE UPDATE OR DELETE ON registry_versiontagchange
    FOR EACH ROW EXECUTE FUNCTION registry_activity_append_only();
"""
POSTGRES_DOWN = (
    "DROP TRIGGER IF EXISTS registry_versiontagchange_append_only ON registry_versiontagchange;"
)
SQLITE_UP = [
    """CREATE TRIGGER registry_versiontagchange_no_update BEFORE UPDATE ON registry_versiontagchange
       BEGIN SELECT RAISE(ABORT, 'registry_versiontagchange is append-only: UPDATE is not allowed'); END;""",
    """CREATE TRIGGER registry_versiontagchange_no_delete BEFORE DELETE ON registry_versiontagchange
       BEGIN SELECT RAISE(ABORT, 'registry_versiontagchange is append-only: DELETE is not allowed'); END;""",
]
SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS registry_versiontagchange_no_update;",
    "DROP TRIGGER IF EXISTS registry_versiontagchange_no_delete;",
]


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        statements = statements_by_vendor[schema_editor.connection.vendor]
        for statement in [statements] if isinstance(statements, str) else statements:
            schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):

    dependencies = [
        ('registry', '0021_registeredmodel_hooks_may_match'),
    ]

    operations = [
        migrations.CreateModel(
            name='VersionTagChange',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('model_name', models.CharField(max_length=256)),
                ('version', models.PositiveIntegerField()),
                ('key', models.CharField(max_length=250)),
                ('old_value', models.TextField(blank=True, null=True)),
                ('new_value', models.TextField(blank=True, null=True)),
                ('cause', models.CharField(choices=[('DIRECT', 'Set or removed'), ('WITH_VERSION', 'Given when the version was created'), ('IMPORTED', 'Imported from another registry')], default='DIRECT', max_length=16)),
                ('actor_username', models.CharField(blank=True, default='', max_length=150)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('registered_model', models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='registry.registeredmodel')),
            ],
            options={
                'ordering': ['created_at', 'id'],
                'indexes': [models.Index(fields=['registered_model', 'version', 'created_at'], name='version_tag_change_history')],
                'constraints': [models.CheckConstraint(condition=models.Q(('cause__in', ['DIRECT', 'WITH_VERSION', 'IMPORTED'])), name='version_tag_change_cause_valid'), models.CheckConstraint(condition=models.Q(('old_value__isnull', False), ('new_value__isnull', False), _connector='OR'), name='version_tag_change_changes_something')],
            },
        ),
        migrations.RunPython(
            _run({"postgresql": POSTGRES_UP, "sqlite": SQLITE_UP}),
            _run({"postgresql": POSTGRES_DOWN, "sqlite": SQLITE_DOWN}),
        ),
    ]
