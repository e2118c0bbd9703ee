"""Make the activity trail append-only in the database itself (docs/architecture.md, "Decisions").

Row triggers refuse UPDATE and DELETE on ``registry_activity`` whatever the client: the ORM,
the admin, a shell or raw SQL. (TRUNCATE, an operator's tool, is not a row operation.)
"""

from django.db import migrations

POSTGRES_UP = """
CREATE OR REPLACE FUNCTION registry_activity_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION USING
        MESSAGE = 'registry_activity is append-only: ' || TG_OP || ' is not allowed',
        ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER registry_activity_append_only
    BEFORE UPDATE OR DELETE ON registry_activity
    FOR EACH ROW EXECUTE FUNCTION registry_activity_append_only();
"""
POSTGRES_DOWN = """
DROP TRIGGER IF EXISTS registry_activity_append_only ON registry_activity;
DROP FUNCTION IF EXISTS registry_activity_append_only();
"""
SQLITE_UP = [
    """CREATE TRIGGER registry_activity_no_update BEFORE UPDATE ON registry_activity
       BEGIN SELECT RAISE(ABORT, 'registry_activity is append-only: UPDATE is not allowed'); END;""",
    """CREATE TRIGGER registry_activity_no_delete BEFORE DELETE ON registry_activity
       BEGIN SELECT RAISE(ABORT, 'registry_activity is append-only: DELETE is not allowed'); END;""",
]
SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS registry_activity_no_update;",
    "DROP TRIGGER IF EXISTS registry_activity_no_delete;",
]


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        statements = statements_by_vendor.get(schema_editor.connection.vendor)
        if statements is None:
            raise RuntimeError(
                f"No append-only trigger for database {schema_editor.connection.vendor!r}; "
                "the registry supports PostgreSQL and SQLite."
            )
        for statement in [statements] if isinstance(statements, str) else statements:
            schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [("registry", "0001_initial")]

    operations = [
        migrations.RunPython(
            _run({"postgresql": POSTGRES_UP, "sqlite": SQLITE_UP}),
            _run({"postgresql": POSTGRES_DOWN, "sqlite": SQLITE_DOWN}),
        ),
    ]
