"""The real clients authenticate with tokens and passwords and see permission refusals."""

from __future__ import annotations

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import PermissionDenied
from databricks.sdk.service.ml import (
    RegisteredModelAccessControlRequest,
    RegisteredModelPermissionLevel,
)
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from accounts import services as account_services
from accounts.permissions import Level, effective_level
from registry import services
from registry.models import RegisteredModel
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def mlflow_env(monkeypatch):
    for name in (
        "MLFLOW_TRACKING_USERNAME",
        "MLFLOW_TRACKING_PASSWORD",
        "MLFLOW_TRACKING_TOKEN",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    return monkeypatch


@pytest.fixture
def private_registry(settings):
    settings.REGISTRY = {**settings.REGISTRY, "DEFAULT_PERMISSION_LEVEL": "NONE"}


def token_for(user) -> str:
    return account_services.api_token_create(actor=user, name="test").secret


def test_mlflow_with_a_token_and_with_a_password(live_server, user, mlflow_env):
    mlflow_env.setenv("MLFLOW_TRACKING_TOKEN", token_for(user))
    client = MlflowClient(tracking_uri=live_server.url, registry_uri=live_server.url)
    client.create_registered_model("by-token")
    assert client.get_registered_model("by-token").name == "by-token"

    mlflow_env.delenv("MLFLOW_TRACKING_TOKEN")
    mlflow_env.setenv("MLFLOW_TRACKING_USERNAME", user.username)
    mlflow_env.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORD)
    assert [m.name for m in client.search_registered_models()] == ["by-token"]

    # A token in the password field works too (what teams put in MLFLOW_TRACKING_PASSWORD).
    mlflow_env.setenv("MLFLOW_TRACKING_PASSWORD", token_for(user))
    assert client.get_registered_model("by-token").name == "by-token"


def test_mlflow_sees_unauthenticated_and_permission_denied(
    live_server, user, django_user_model, mlflow_env, private_registry
):
    services.registered_model_create(actor=user, name="secret-model")
    mlflow_env.setenv("MLFLOW_TRACKING_TOKEN", "mrt_" + "x" * 43)
    client = MlflowClient(tracking_uri=live_server.url, registry_uri=live_server.url)
    with pytest.raises(MlflowException) as excinfo:
        client.get_registered_model("secret-model")
    assert excinfo.value.error_code == "UNAUTHENTICATED"

    outsider = django_user_model.objects.create_user("outsider", password=PASSWORD)
    mlflow_env.setenv("MLFLOW_TRACKING_TOKEN", token_for(outsider))
    with pytest.raises(MlflowException) as excinfo:
        client.get_registered_model("secret-model")
    assert excinfo.value.error_code == "PERMISSION_DENIED"
    with pytest.raises(MlflowException) as excinfo:
        client.delete_registered_model("secret-model")
    assert excinfo.value.error_code == "PERMISSION_DENIED"
    assert RegisteredModel.objects.filter(name="secret-model").exists()
    assert client.search_registered_models() == []


def test_databricks_sdk_manages_permissions(
    live_server, user, django_user_model, monkeypatch, private_registry
):
    for name in ("DATABRICKS_HOST", "DATABRICKS_TOKEN", "DATABRICKS_CONFIG_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", "/nonexistent")
    bob = django_user_model.objects.create_user("bob", password=PASSWORD)
    services.registered_model_create(actor=user, name="shared")
    owner = WorkspaceClient(host=live_server.url, token=token_for(user))
    as_bob = WorkspaceClient(host=live_server.url, token=token_for(bob))

    model = owner.model_registry.get_model(name="shared").registered_model_databricks
    assert model.permission_level.value == "CAN_MANAGE"
    model_id = model.id

    levels = owner.model_registry.get_permission_levels(registered_model_id=model_id)
    assert [level.permission_level.value for level in levels.permission_levels] == [
        "CAN_READ",
        "CAN_EDIT",
        "CAN_MANAGE_STAGING_VERSIONS",
        "CAN_MANAGE_PRODUCTION_VERSIONS",
        "CAN_MANAGE",
    ]
    with pytest.raises(PermissionDenied):
        as_bob.model_registry.get_model(name="shared")

    updated = owner.model_registry.update_permissions(
        registered_model_id=model_id,
        access_control_list=[
            RegisteredModelAccessControlRequest(
                user_name="bob", permission_level=RegisteredModelPermissionLevel.CAN_EDIT
            )
        ],
    )
    direct = {
        entry.user_name: entry.all_permissions[0].permission_level.value
        for entry in updated.access_control_list
        if entry.user_name
    }
    assert direct == {"alice": "CAN_MANAGE", "bob": "CAN_EDIT"}
    registered_model = RegisteredModel.objects.get(name="shared")
    assert effective_level(bob, registered_model) == Level.CAN_EDIT
    seen_by_bob = as_bob.model_registry.get_model(name="shared").registered_model_databricks
    assert seen_by_bob.permission_level.value == "CAN_EDIT"
    as_bob.model_registry.update_model(name="shared", description="bob was here")

    fetched = owner.model_registry.get_permissions(registered_model_id=model_id)
    assert fetched.object_id == f"/registered-models/{model_id}"
    inherited = [e for e in fetched.access_control_list if e.group_name == "admins"]
    assert inherited[0].all_permissions[0].inherited is True

    # PUT replaces every direct grant: bob keeps nothing, alice keeps what she lists.
    owner.model_registry.set_permissions(
        registered_model_id=model_id,
        access_control_list=[
            RegisteredModelAccessControlRequest(
                user_name="alice", permission_level=RegisteredModelPermissionLevel.CAN_MANAGE
            )
        ],
    )
    assert effective_level(bob, registered_model) == Level.NONE
    with pytest.raises(PermissionDenied):
        as_bob.model_registry.update_model(name="shared", description="again")
    with pytest.raises(PermissionDenied):
        as_bob.model_registry.get_permissions(registered_model_id=model_id)
    registered_model.refresh_from_db()
    assert registered_model.description == "bob was here"
