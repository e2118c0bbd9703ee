"""Partial (key, value, owner) indexes on the tag tables, for ``tags.<key> = '<value>'`` searches.

On PostgreSQL the indexes are built with ``CREATE INDEX CONCURRENTLY``, so an upgrade does not
block writes to the tag tables while they are built (a few seconds per million tags). That
cannot run inside a transaction, hence ``atomic = False``. If such a build is interrupted it
leaves an INVALID index behind: drop it (``DROP INDEX CONCURRENTLY mv_tag_key_value``) and run
``migrate`` again. Other databases (SQLite) build them the ordinary way.
"""

import django.db.models.functions.text
import django.db.models.lookups
from django.db import migrations, models

from registry.migrations._concurrent import AddIndexConcurrentlyOnPostgres


def _short_values():
    return models.Q(
        django.db.models.lookups.LessThanOrEqual(
            django.db.models.functions.text.Length("value"), 256
        )
    )


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("registry", "0007_audit_policy_changes_and_registration_retry"),
    ]

    operations = [
        AddIndexConcurrentlyOnPostgres(
            model_name="modelversiontag",
            index=models.Index(
                condition=_short_values(),
                fields=["key", "value", "model_version"],
                name="mv_tag_key_value",
            ),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name="registeredmodeltag",
            index=models.Index(
                condition=_short_values(),
                fields=["key", "value", "registered_model"],
                name="rm_tag_key_value",
            ),
        ),
    ]
