"""The rules of accounts.permissions that the matrix does not show: defaults, creators,
groups combining with direct grants, and the registry-wide right to create models."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from accounts.models import RegisteredModelGrant
from accounts.permissions import Level, effective_level
from kernel.errors import RegistryError
from registry import selectors, services
from registry.models import RegisteredModel

pytestmark = pytest.mark.django_db


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user("bob", password="a-long-password")


def test_the_creator_manages_and_others_get_the_default(user, bob, settings):
    registered_model = services.registered_model_create(actor=user, name="m")
    assert effective_level(user, registered_model) == Level.CAN_MANAGE
    assert effective_level(bob, registered_model) == Level.CAN_READ  # the default default

    settings.REGISTRY = {**settings.REGISTRY, "DEFAULT_PERMISSION_LEVEL": "CAN_EDIT"}
    assert effective_level(bob, registered_model) == Level.CAN_EDIT
    settings.REGISTRY = {**settings.REGISTRY, "DEFAULT_PERMISSION_LEVEL": "NONE"}
    assert effective_level(bob, registered_model) == Level.NONE
    with pytest.raises(RegistryError) as excinfo:
        selectors.registered_model_get(actor=bob, name="m")
    assert excinfo.value.code == "PERMISSION_DENIED"


def test_the_highest_of_own_group_and_default_wins(user, bob, settings):
    settings.REGISTRY = {**settings.REGISTRY, "DEFAULT_PERMISSION_LEVEL": "CAN_READ"}
    registered_model = services.registered_model_create(actor=user, name="m")
    ops = Group.objects.create(name="ops")
    ops.user_set.add(bob)
    RegisteredModelGrant.objects.create(
        registered_model=registered_model, user=bob, level="CAN_EDIT"
    )
    assert effective_level(bob, registered_model) == Level.CAN_EDIT
    RegisteredModelGrant.objects.create(
        registered_model=registered_model, group=ops, level="CAN_MANAGE_PRODUCTION_VERSIONS"
    )
    assert effective_level(bob, registered_model) == Level.CAN_MANAGE_PRODUCTION_VERSIONS


def test_creating_models_can_be_limited_to_groups(user, bob, settings):
    settings.REGISTRY = {**settings.REGISTRY, "MODEL_CREATOR_GROUPS": ["ml-leads"]}
    with pytest.raises(RegistryError) as excinfo:
        services.registered_model_create(actor=bob, name="nope")
    assert excinfo.value.code == "PERMISSION_DENIED"
    assert not RegisteredModel.objects.exists()
    Group.objects.create(name="ml-leads").user_set.add(bob)
    services.registered_model_create(actor=bob, name="yes")
    assert RegisteredModel.objects.get().name == "yes"


def test_staging_level_cannot_touch_production(user, bob):
    services.registered_model_create(actor=user, name="m")
    services.model_version_create(actor=user, name="m", source="s3://b/1")
    services.model_version_stage_transition(actor=user, name="m", version="1", stage="Production")
    registered_model = RegisteredModel.objects.get()
    RegisteredModelGrant.objects.create(
        registered_model=registered_model, user=bob, level="CAN_MANAGE_STAGING_VERSIONS"
    )
    # Out of Production needs the Production level as much as into it.
    with pytest.raises(RegistryError) as excinfo:
        services.model_version_stage_transition(actor=bob, name="m", version="1", stage="Archived")
    assert "CAN_MANAGE_PRODUCTION_VERSIONS" in excinfo.value.message
    services.model_version_create(actor=bob, name="m", source="s3://b/2")
    services.model_version_stage_transition(actor=bob, name="m", version="2", stage="Staging")
    services.model_version_stage_transition(actor=bob, name="m", version="2", stage="Archived")


# --- What a refused grant tells ----------------------------------------------------------------


def test_a_refused_grant_does_not_depend_on_whether_a_user_or_group_exists(api, user, bob):
    """A manager of one model must not learn who has an account from how a grant that is
    refused anyway is refused: the whole list is checked before any name is looked up, and an
    unknown user and an unknown group are refused alike."""
    registered_model = services.registered_model_create(actor=user, name="m")
    Group.objects.create(name="ops")
    url = f"/api/2.0/permissions/registered-models/{registered_model.code.hex}"
    before = list(RegisteredModelGrant.objects.values_list("user_id", "group_id", "level"))

    def patch(entries):
        return api.patch(url, {"access_control_list": entries}, format="json")

    bad_level = {"user_name": "carol", "permission_level": "OWNER"}
    answers = []
    for principal in (
        {"user_name": "bob"},
        {"user_name": "nobody"},
        {"group_name": "ops"},
        {"group_name": "no-such-group"},
    ):
        response = patch([{**principal, "permission_level": "CAN_READ"}, bad_level])
        answers.append((response.status_code, response.json()))
    assert answers[0][0] == 400
    assert answers[0][1]["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "Invalid permission_level 'OWNER'" in answers[0][1]["message"]
    assert all(answer == answers[0] for answer in answers)

    unknown_user = patch([{"user_name": "ghost", "permission_level": "CAN_READ"}])
    unknown_group = patch([{"group_name": "ghost", "permission_level": "CAN_READ"}])
    assert unknown_user.status_code == unknown_group.status_code == 400
    assert unknown_user.json() == unknown_group.json()
    assert unknown_user.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "'ghost'" in unknown_user.json()["message"]

    after = list(RegisteredModelGrant.objects.values_list("user_id", "group_id", "level"))
    assert after == before


def test_a_grant_is_removed_by_a_manager_only_and_the_default_remains(user, bob, settings):
    from accounts import services as account_services

    settings.REGISTRY = {**settings.REGISTRY, "DEFAULT_PERMISSION_LEVEL": "CAN_READ"}
    registered_model = services.registered_model_create(actor=user, name="m")
    ops = Group.objects.create(name="ops")
    RegisteredModelGrant.objects.create(
        registered_model=registered_model, user=bob, level="CAN_EDIT"
    )
    RegisteredModelGrant.objects.create(
        registered_model=registered_model, group=ops, level="CAN_EDIT"
    )
    with pytest.raises(RegistryError) as excinfo:
        account_services.registered_model_grant_delete(
            actor=bob, registered_model=registered_model, user_name="bob"
        )
    assert excinfo.value.code == "PERMISSION_DENIED"
    with pytest.raises(RegistryError):
        account_services.registered_model_grant_delete(
            actor=user, registered_model=registered_model, user_name="bob", group_name="ops"
        )
    assert account_services.registered_model_grant_delete(
        actor=user, registered_model=registered_model, user_name="bob"
    )
    assert effective_level(bob, registered_model) == Level.CAN_READ
    assert not account_services.registered_model_grant_delete(
        actor=user, registered_model=registered_model, user_name="bob"
    )
    assert account_services.registered_model_grant_delete(
        actor=user, registered_model=registered_model, group_name="ops"
    )
    assert list(RegisteredModelGrant.objects.filter(registered_model=registered_model)) == [
        RegisteredModelGrant.objects.get(user=user)
    ]
