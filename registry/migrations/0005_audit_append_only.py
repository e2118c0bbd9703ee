"""The registry-level audit entries are append-only in the database too (see 0002)."""

from django.db import migrations

POSTGRES_UP = """
CREATE TRIGGER registry_auditentry_append_only
    BEFORE UPDATE OR DELETE ON registry_auditentry
    FOR EACH ROW EXECUTE FUNCTION registry_activity_append_only();
"""
POSTGRES_DOWN = "DROP TRIGGER IF EXISTS registry_auditentry_append_only ON registry_auditentry;"
SQLITE_UP = [
    """CREATE TRIGGER registry_auditentry_no_update BEFORE UPDATE ON registry_auditentry
       BEGIN SELECT RAISE(ABORT, 'registry_auditentry is append-only: UPDATE is not allowed'); END;""",
    """CREATE TRIGGER registry_auditentry_no_delete BEFORE DELETE ON registry_auditentry
       BEGIN SELECT RAISE(ABORT, 'registry_auditentry is append-only: DELETE is not allowed'); END;""",
]
SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS registry_auditentry_no_update;",
    "DROP TRIGGER IF EXISTS registry_auditentry_no_delete;",
]


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        statements = statements_by_vendor[schema_editor.connection.vendor]
        for statement in [statements] if isinstance(statements, str) else statements:
            schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [("registry", "0004_approval_workflow")]

    operations = [
        migrations.RunPython(
            _run({"postgresql": POSTGRES_UP, "sqlite": SQLITE_UP}),
            _run({"postgresql": POSTGRES_DOWN, "sqlite": SQLITE_DOWN}),
        ),
    ]
