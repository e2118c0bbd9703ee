"""A version's trail is read by (model, version number), which still names the version once it
is deleted; the deleted versions of a deleted model are found by the name it had. The old index
on the version's id goes: nothing reads by it any more.

Built and dropped concurrently on PostgreSQL, so the upgrade does not block writes to the trail
(see 0008 for what to do if an interrupted build leaves an INVALID index behind).
"""

from django.db import migrations, models

from registry.migrations._concurrent import (
    AddIndexConcurrentlyOnPostgres,
    RemoveIndexConcurrentlyOnPostgres,
)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("registry", "0011_activity_deleted_model_version"),
    ]

    operations = [
        AddIndexConcurrentlyOnPostgres(
            model_name="activity",
            index=models.Index(
                fields=["registered_model", "version", "created_at"], name="activity_trail"
            ),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name="activity",
            index=models.Index(
                condition=models.Q(activity_type="DELETED_MODEL_VERSION"),
                fields=["model_name", "version"],
                name="activity_deleted_version",
            ),
        ),
        RemoveIndexConcurrentlyOnPostgres(
            model_name="activity",
            name="activity_version",
        ),
    ]
