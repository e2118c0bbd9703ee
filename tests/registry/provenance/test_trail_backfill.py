"""The migration that adds the hash chains gives the rows written before it their hashes, in
the order they were written, with the append-only triggers back in place afterwards."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("registry", "0017_imports")]
AFTER = [("registry", "0018_provenance_and_hash_chains")]


@pytest.fixture(autouse=True)
def _back_to_the_latest_schema():
    """The test leaves the database at 0018; the tests after it need every migration since
    (the tables added later would be missing), so migrate forward to the latest again."""
    yield
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())


def test_existing_rows_are_chained_and_the_tables_stay_append_only():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    now = timezone.now()
    models = [
        old.get_model("registry", "RegisteredModel").objects.create(
            name=name, created_at=now, updated_at=now
        )
        for name in ("a", "b")
    ]
    activity = old.get_model("registry", "Activity")
    for number, model in enumerate([models[0], models[1], models[0]], start=1):
        activity.objects.create(
            model_version_id=number,
            registered_model_id=model.pk,
            model_name=model.name,
            version=number,
            activity_type="NEW_COMMENT",
            comment=f"comment {number}",
            created_at=now,
        )
    old.get_model("registry", "AuditEntry").objects.create(
        action="ADMIN_ACTION",
        model_name="",
        model_code=uuid.UUID(int=0),
        detail={"action": "x", "count": 1},
        created_at=now,
    )

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(AFTER)

    from io import StringIO

    from django.core.management import call_command
    from django.db import DatabaseError, transaction

    from registry.models import Activity

    out = StringIO()
    call_command("verify_trail", "--no-progress", stdout=out)
    assert "Every chain holds." in out.getvalue()
    assert "(3 rows in 2 chains)" in out.getvalue()
    first, _second, third = Activity.objects.order_by("id")
    assert third.prev_hash == first.row_hash
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        Activity.objects.filter(pk=first.pk).update(comment="rewritten")
