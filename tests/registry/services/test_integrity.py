"""The invariants the database itself keeps (docs/architecture.md, "Decisions"), checked below the
services."""

from __future__ import annotations

import threading

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction

from kernel.errors import RegistryError
from registry import services
from registry.models import Activity, ModelVersion, RegisteredModel, RegisteredModelAlias

pytestmark = pytest.mark.django_db


@pytest.fixture
def version(user) -> ModelVersion:
    services.registered_model_create(actor=user, name="m")
    return services.model_version_create(actor=user, name="m", source="s3://b/m/1")


def test_the_activity_trail_refuses_update_and_delete(user, version):
    services.model_version_stage_transition(
        actor=user, name="m", version="1", stage="Staging", comment="ready for QA"
    )
    entry = Activity.objects.get()
    assert (entry.from_stage, entry.to_stage, entry.comment) == ("None", "Staging", "ready for QA")

    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        Activity.objects.filter(pk=entry.pk).update(comment="rewritten")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        Activity.objects.filter(pk=entry.pk).delete()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM registry_activity")
    assert Activity.objects.get().comment == "ready for QA"


def test_the_trail_outlives_the_model(user, version):
    services.model_version_stage_transition(actor=user, name="m", version="1", stage="Production")
    # A version in Production is guarded: deleting its model needs force (audited).
    services.registered_model_delete(actor=user, name="m", force=True)
    assert RegisteredModel.objects.count() == 0
    assert list(
        Activity.objects.values_list("model_name", "version", "activity_type", "to_stage")
    ) == [
        ("m", 1, "APPLIED_TRANSITION", "Production"),
        ("m", 1, "DELETED_MODEL_VERSION", ""),  # the deletion ends the trail
    ]


def test_stage_values_are_checked_by_the_database(version):
    with pytest.raises(IntegrityError), transaction.atomic():
        ModelVersion.objects.filter(pk=version.pk).update(current_stage="Prod")


def test_version_numbers_are_unique_per_model(version):
    with pytest.raises(IntegrityError), transaction.atomic():
        ModelVersion.objects.create(
            registered_model=version.registered_model, version=1, source="s3://b/dup"
        )


def test_aliases_are_unique_per_model(user, version):
    services.model_version_create(actor=user, name="m", source="s3://b/m/2")
    services.registered_model_alias_set(actor=user, name="m", alias="prod", version="1")
    services.registered_model_alias_set(actor=user, name="m", alias="prod", version="2")
    assert list(RegisteredModelAlias.objects.values_list("alias", "model_version__version")) == [
        ("prod", 2)
    ]
    with pytest.raises(IntegrityError), transaction.atomic():
        RegisteredModelAlias.objects.create(
            registered_model=version.registered_model, alias="prod", model_version=version
        )


def test_version_numbers_are_never_reused(user, version):
    services.model_version_create(actor=user, name="m", source="s3://b/m/2")
    services.model_version_create(actor=user, name="m", source="s3://b/m/3")
    services.model_version_delete(actor=user, name="m", version="3")
    services.model_version_delete(actor=user, name="m", version="1")
    created = services.model_version_create(actor=user, name="m", source="s3://b/m/4")
    assert created.version == 4
    assert sorted(ModelVersion.objects.values_list("version", flat=True)) == [2, 4]


def test_a_failed_transition_changes_nothing(user, version):
    with pytest.raises(RegistryError):
        services.model_version_stage_transition(
            actor=user, name="m", version="1", stage="Archived", archive_existing_versions=True
        )
    version.refresh_from_db()
    assert version.current_stage == "None"
    assert Activity.objects.count() == 0


def test_duplicate_names_are_refused(user, version):
    with pytest.raises(RegistryError) as excinfo:
        services.registered_model_create(actor=user, name="m")
    assert excinfo.value.code == "RESOURCE_ALREADY_EXISTS"
    services.registered_model_create(actor=user, name="other")
    with pytest.raises(RegistryError) as excinfo:
        services.registered_model_rename(actor=user, name="other", new_name="m")
    assert excinfo.value.code == "RESOURCE_ALREADY_EXISTS"


@pytest.mark.django_db(transaction=True)
def test_concurrent_version_creation_gives_distinct_numbers(user):
    """Creators racing on one model serialise on its row lock: no duplicate, no gap."""
    services.registered_model_create(actor=user, name="raced")
    errors: list[BaseException] = []

    def create() -> None:
        try:
            for _ in range(5):
                services.model_version_create(actor=user, name="raced", source="s3://b/r")
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=create) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    numbers = sorted(ModelVersion.objects.values_list("version", flat=True))
    assert numbers == list(range(1, 21))


def test_a_direct_move_to_the_current_stage_is_accepted_as_mlflow_does(user, version):
    services.model_version_stage_transition(actor=user, name="m", version="1", stage="Staging")
    again = services.model_version_stage_transition(
        actor=user, name="m", version="1", stage="staging"
    )
    assert again.current_stage == "Staging"
    assert Activity.objects.count() == 2
