"""The history of version tags (docs/decisions/0022-version-tag-history.md): every set, change
and removal, with the old value, the actor and the time, written with the change; nothing for a
removal of a tag the version does not carry; kept after the version is deleted; append-only."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction
from django.test.utils import CaptureQueriesContext

from kernel.errors import RegistryError
from registry import selectors, services
from registry.models import ModelVersionTag, RegisteredModel, TagChangeCause, VersionTagChange

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(django_user_model):
    user = django_user_model.objects.create_user("alice", password="alice-password-1")
    services.registered_model_create(actor=user, name="m")
    services.model_version_create(actor=user, name="m", source="s3://b/m/1")
    return user


def history() -> list[tuple[str, str | None, str | None, str, str]]:
    return list(
        VersionTagChange.objects.order_by("created_at", "id").values_list(
            "key", "old_value", "new_value", "cause", "actor_username"
        )
    )


def test_a_new_tag_is_recorded_with_no_old_value(alice):
    services.model_version_tag_set(
        actor=alice, name="m", version="1", key="validation_status", value="pending"
    )
    assert history() == [("validation_status", None, "pending", "DIRECT", "alice")]
    change = VersionTagChange.objects.get()
    assert (change.model_name, change.version) == ("m", 1)
    assert change.registered_model_id == RegisteredModel.objects.get().pk


def test_a_changed_tag_keeps_the_value_it_replaced(alice, django_user_model):
    bob = django_user_model.objects.create_superuser("bob", password="bob-password-1")
    services.model_version_tag_set(
        actor=alice, name="m", version="1", key="validation_status", value="pending"
    )
    services.model_version_tag_set(
        actor=bob, name="m", version="1", key="validation_status", value="passed"
    )
    services.model_version_tag_set(
        actor=bob, name="m", version="1", key="validation_status", value="passed"
    )
    assert history() == [
        ("validation_status", None, "pending", "DIRECT", "alice"),
        ("validation_status", "pending", "passed", "DIRECT", "bob"),
        ("validation_status", "passed", "passed", "DIRECT", "bob"),
    ]
    assert ModelVersionTag.objects.get().value == "passed"


def test_an_empty_value_is_a_value_not_an_absence(alice):
    services.model_version_tag_set(actor=alice, name="m", version="1", key="k", value="")
    services.model_version_tag_set(actor=alice, name="m", version="1", key="k", value="v")
    assert history() == [("k", None, "", "DIRECT", "alice"), ("k", "", "v", "DIRECT", "alice")]


def test_a_removal_keeps_the_value_it_removed(alice):
    services.model_version_tag_set(actor=alice, name="m", version="1", key="x", value="1")
    services.model_version_tag_delete(actor=alice, name="m", version="1", key="x")
    assert history() == [("x", None, "1", "DIRECT", "alice"), ("x", "1", None, "DIRECT", "alice")]
    assert not ModelVersionTag.objects.exists()


def test_removing_a_missing_key_records_nothing(alice):
    services.model_version_tag_set(actor=alice, name="m", version="1", key="x", value="1")
    services.model_version_tag_delete(actor=alice, name="m", version="1", key="absent")
    assert history() == [("x", None, "1", "DIRECT", "alice")]


def test_the_history_costs_one_insert_and_no_read(alice):
    """Set and delete each write one history row with a single extra INSERT: the old value
    comes from the row the write locks (set) or deletes (delete), not from a read of its own."""
    services.model_version_tag_set(actor=alice, name="m", version="1", key="x", value="1")

    def statements(call) -> list[str]:
        with CaptureQueriesContext(connection) as queries:
            call()
        return [q["sql"] for q in queries.captured_queries]

    change = statements(
        lambda: services.model_version_tag_set(
            actor=alice, name="m", version="1", key="x", value="2"
        )
    )
    touching_tags = [sql for sql in change if "registry_modelversiontag" in sql]
    assert len(touching_tags) == 2  # the locked read of the row, and its UPDATE
    assert len([sql for sql in change if "registry_versiontagchange" in sql]) == 1
    removal = statements(
        lambda: services.model_version_tag_delete(actor=alice, name="m", version="1", key="x")
    )
    assert [sql.split()[0] for sql in removal if "registry_modelversiontag" in sql] == ["DELETE"]
    assert [sql.split()[0] for sql in removal if "registry_versiontagchange" in sql] == ["INSERT"]


def test_a_refused_write_records_nothing(alice, django_user_model, settings):
    settings.REGISTRY = {**settings.REGISTRY, "DEFAULT_PERMISSION_LEVEL": "CAN_READ"}
    reader = django_user_model.objects.create_user("reader", password="reader-password-1")
    with pytest.raises(RegistryError):
        services.model_version_tag_set(actor=reader, name="m", version="1", key="x", value="1")
    assert history() == []


def test_tags_given_with_the_version_are_recorded_as_such(alice):
    services.model_version_create(
        actor=alice, name="m", source="s3://b/m/2", tags=[{"key": "team", "value": "risk"}]
    )
    assert history() == [("team", None, "risk", TagChangeCause.WITH_VERSION, "alice")]
    assert VersionTagChange.objects.get().version == 2


def test_the_history_outlives_the_version(alice):
    services.model_version_tag_set(actor=alice, name="m", version="1", key="x", value="1")
    services.model_version_delete(actor=alice, name="m", version="1")
    registered_model = RegisteredModel.objects.get()
    kept = selectors.model_version_tag_changes(
        registered_model=registered_model, version=1, limit=10
    )
    assert [(c.key, c.new_value) for c in kept] == [("x", "1")]


def test_the_database_refuses_to_rewrite_the_history(alice):
    services.model_version_tag_set(actor=alice, name="m", version="1", key="x", value="1")
    with pytest.raises(DatabaseError), transaction.atomic():
        VersionTagChange.objects.update(new_value="forged")
    with pytest.raises(DatabaseError), transaction.atomic():
        VersionTagChange.objects.all().delete()
    assert history() == [("x", None, "1", "DIRECT", "alice")]


def test_the_selector_keeps_the_latest_in_time_order(alice):
    for value in "abcde":
        services.model_version_tag_set(actor=alice, name="m", version="1", key="x", value=value)
    latest = selectors.model_version_tag_changes(
        registered_model=RegisteredModel.objects.get(), version=1, limit=3
    )
    assert [c.new_value for c in latest] == ["c", "d", "e"]
