"""``RegisteredModel.hooks_may_match`` (docs/decisions/0021-writes-in-fewer-statements.md): never
False while an ACTIVE subscribed hook can match the model, kept so by the writes that change
hooks; a registry write that holds the model's row lock skips the subscription lookup only when
it is False, and a hook change that would set it waits for that write to commit."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import close_old_connections, connection, transaction

from registry import services
from registry.models import RegisteredModel
from registry.services.common import lock_registered_model
from webhooks.models import WebhookDelivery, WebhookFlavor, WebhookStatus
from webhooks.services import delivery
from webhooks.services.management import webhook_create, webhook_delete, webhook_update
from webhooks.services.matching import hooks_changing

EVENTS = ["MODEL_VERSION_CREATED", "MODEL_VERSION_TRANSITIONED_STAGE"]


def flags() -> dict[str, bool]:
    return dict(RegisteredModel.objects.values_list("name", "hooks_may_match"))


def hook(admin: Any, model_name: str | None = None, **kwargs: Any) -> Any:
    return webhook_create(
        actor=admin,
        flavor=WebhookFlavor.DATABRICKS,
        events=EVENTS,
        url="https://example.com/hook",
        model_name=model_name,
        **kwargs,
    )


@pytest.fixture
def models(user) -> None:
    for name in ("a", "b"):
        services.registered_model_create(actor=user, name=name)


@pytest.mark.django_db
def test_a_hook_of_one_model_sets_only_its_flag_and_its_deletion_clears_it(admin, user, models):
    assert flags() == {"a": False, "b": False}
    made = hook(admin, "a")
    assert flags() == {"a": True, "b": False}
    services.model_version_create(actor=user, name="a", source="s3://b/a/1")
    services.model_version_create(actor=user, name="b", source="s3://b/b/1")
    assert list(WebhookDelivery.objects.values_list("event__model_name", flat=True)) == ["a"]
    webhook_delete(actor=admin, webhook=made)
    assert flags() == {"a": False, "b": False}


@pytest.mark.django_db
def test_registry_wide_hooks_set_every_flag_and_new_models_inherit_them(admin, user, models):
    made = hook(admin)
    assert flags() == {"a": True, "b": True}
    services.registered_model_create(actor=user, name="c")
    assert flags()["c"] is True
    own = hook(admin, "a")
    webhook_update(actor=admin, webhook=made, status=WebhookStatus.DISABLED)
    assert flags() == {"a": True, "b": False, "c": False}
    services.registered_model_create(actor=user, name="d")
    assert flags()["d"] is False
    webhook_update(actor=admin, webhook=made, status=WebhookStatus.ACTIVE)
    assert flags() == {"a": True, "b": True, "c": True, "d": True}
    webhook_update(actor=admin, webhook=own, status=WebhookStatus.TEST_MODE)
    webhook_delete(actor=admin, webhook=made)
    assert flags() == {"a": False, "b": False, "c": False, "d": False}


@pytest.mark.django_db
def test_the_worker_disabling_a_hook_clears_the_flag(admin, models, settings):
    made = hook(admin, "b")
    settings.WEBHOOKS = {**settings.WEBHOOKS, "DISABLE_AFTER_FAILURES": 1}
    with transaction.atomic():
        delivery._count_failure(made.pk, "refused")
    made.refresh_from_db()
    assert made.status == WebhookStatus.DISABLED
    assert flags() == {"a": False, "b": False}


@pytest.mark.django_db
def test_a_save_without_fields_leaves_the_flag_as_the_hooks_set_it(admin, models):
    stale = RegisteredModel.objects.get(name="a")
    hook(admin, "a")
    stale.description = "saved with every field"
    stale.save()
    assert flags()["a"] is True
    assert RegisteredModel.objects.get(name="a").description == "saved with every field"
    partial = RegisteredModel.objects.only("pk", "description").get(name="a")
    partial.description = "saved with the loaded fields"
    partial.save()
    assert flags()["a"] is True
    assert RegisteredModel.objects.get(name="a").description == "saved with the loaded fields"


def _waiting_for_a_lock(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
        row = cursor.fetchone()
    return row is not None and row[0] == "Lock"


def _wait_until(predicate: Any) -> None:
    done = threading.Event()
    for _ in range(600):
        if predicate():
            return
        done.wait(0.05)
    raise AssertionError("the condition never held")


@pytest.mark.django_db(transaction=True)
def test_a_hook_created_while_a_write_holds_the_lock_waits_for_it(admin, user, models):
    """The write read False under the lock and skips the lookup; the hook's transaction, which
    must set the flag, waits on the row lock until the write committed, so the hook commits
    after the write, which the lookup would not have seen either."""
    locked = threading.Event()
    release = threading.Event()
    hook_pid: list[int] = []
    hook_done = threading.Event()

    def write() -> None:
        try:
            with transaction.atomic():
                registered_model = lock_registered_model("a")
                assert registered_model.hooks_may_match is False
                locked.set()
                release.wait(30)
        finally:
            close_old_connections()
            connection.close()

    def create_hook() -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                hook_pid.append(cursor.fetchone()[0])
            hook(admin, "a")
            hook_done.set()
        finally:
            connection.close()

    writer = threading.Thread(target=write)
    writer.start()
    assert locked.wait(30)
    creator = threading.Thread(target=create_hook)
    creator.start()
    _wait_until(lambda: bool(hook_pid) and _waiting_for_a_lock(hook_pid[0]))
    assert not hook_done.is_set()
    release.set()
    writer.join(30)
    creator.join(30)
    assert hook_done.is_set()
    assert flags()["a"] is True


@pytest.mark.django_db(transaction=True)
def test_a_write_that_waits_for_a_hook_change_reads_its_flag(admin, user, models):
    """The other order: the hook's transaction holds the row lock first; the version created
    meanwhile waits for it, then reads the flag it committed and records the delivery."""
    inside = threading.Event()
    release = threading.Event()
    writer_pid: list[int] = []
    errors: list[BaseException] = []

    def change_hooks() -> None:
        try:
            with hooks_changing([registered_model_id]):
                hook(admin, "a")
                inside.set()
                release.wait(30)
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)
        finally:
            connection.close()

    def write() -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                writer_pid.append(cursor.fetchone()[0])
            services.model_version_create(actor=user, name="a", source="s3://b/a/1")
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connection.close()

    registered_model_id = RegisteredModel.objects.get(name="a").pk
    changer = threading.Thread(target=change_hooks)
    changer.start()
    assert inside.wait(30)
    writer = threading.Thread(target=write)
    writer.start()
    _wait_until(lambda: bool(writer_pid) and _waiting_for_a_lock(writer_pid[0]))
    release.set()
    changer.join(30)
    writer.join(30)
    assert errors == []
    assert flags()["a"] is True
    assert WebhookDelivery.objects.filter(event__model_name="a").count() == 1
