"""The embedded database (SQLite) keeps the trail append-only after every migration.

SQLite rebuilds a table to change its columns or constraints, and the rebuild drops the table's
triggers; a migration that rebuilds ``registry_activity`` must create them again. This migrates
a fresh SQLite database in its own process, as ``make run`` does, and tries to rewrite the trail.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_the_trail_refuses_update_and_delete_on_sqlite_after_all_migrations(tmp_path):
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_", "CELERY_", "DJANGO_", "ARTIFACT_"))
    }
    env.update({"REGISTRY_DATA_DIR": str(tmp_path), "DJANGO_DEBUG": "true"})
    subprocess.run(  # noqa: S603 - our own interpreter and arguments
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    database = sqlite3.connect(tmp_path / "registry.sqlite3")
    with database:
        database.execute(
            "INSERT INTO registry_activity (model_version_id, registered_model_id, model_name, "
            "version, activity_type, from_stage, to_stage, comment, system_comment, "
            "actor_username, created_at) VALUES (1, 1, 'm', 1, 'DELETED_MODEL_VERSION', "
            "'Production', '', '', '', 'owner', '2026-01-01 00:00:00')"
        )
    for statement in (
        "UPDATE registry_activity SET actor_username = 'someone else'",
        "DELETE FROM registry_activity",
    ):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"), database:
            database.execute(statement)
    assert database.execute("SELECT actor_username FROM registry_activity").fetchall() == [
        ("owner",)
    ]
    # The history of aliases and stages too (migration 0016).
    with database:
        database.execute(
            "INSERT INTO registry_pointermove (registered_model_id, model_name, kind, pointer, "
            "from_version, to_version, cause, artifact_digest, comment, actor_username, "
            "created_at) VALUES (1, 'm', 'ALIAS', 'champion', NULL, 1, 'SET', '', '', 'owner', "
            "'2026-01-01 00:00:00')"
        )
    for statement in (
        "UPDATE registry_pointermove SET to_version = 2",
        "DELETE FROM registry_pointermove",
    ):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"), database:
            database.execute(statement)
    assert database.execute("SELECT to_version FROM registry_pointermove").fetchall() == [(1,)]
    # The history of version tags too (migration 0020).
    with database:
        database.execute(
            "INSERT INTO registry_versiontagchange (registered_model_id, model_name, version, "
            "key, old_value, new_value, cause, actor_username, created_at) VALUES (1, 'm', 1, "
            "'validation_status', 'pending', 'passed', 'DIRECT', 'owner', '2026-01-01 00:00:00')"
        )
    for statement in (
        "UPDATE registry_versiontagchange SET new_value = 'forged'",
        "DELETE FROM registry_versiontagchange",
    ):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"), database:
            database.execute(statement)
    assert database.execute("SELECT new_value FROM registry_versiontagchange").fetchall() == [
        ("passed",)
    ]
