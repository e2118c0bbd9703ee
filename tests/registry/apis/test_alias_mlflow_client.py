"""Governed aliases seen by the unmodified ``mlflow`` client against a live server: a protected
``@champion`` refuses ``set_registered_model_alias`` (and its deletion) with
``PERMISSION_DENIED`` naming the policy, an unprotected alias behaves as against ``mlflow
server``, and the deletion guard answers the client's deletes."""

from __future__ import annotations

import warnings

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import RestException

from registry import services
from registry.models import AliasRequest, PointerMove, RegisteredModel, RegisteredModelAlias
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def client(live_server, user, monkeypatch) -> MlflowClient:
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user.username)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORD)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    mlflow.set_registry_uri(live_server.url)
    warnings.simplefilter("ignore", FutureWarning)
    return MlflowClient(tracking_uri=live_server.url, registry_uri=live_server.url)


def aliases() -> dict[str, int]:
    return dict(RegisteredModelAlias.objects.values_list("alias", "model_version__version"))


def test_a_protected_alias_refuses_the_client_naming_the_policy(client, user, django_user_model):
    client.create_registered_model("churn")
    for n in range(1, 4):
        client.create_model_version("churn", f"s3://models/churn/{n}")
    client.set_registered_model_alias("churn", "champion", "1")
    root = django_user_model.objects.create_superuser("root", password=PASSWORD)
    services.alias_policy_set(actor=root, alias="champion", protected=True)  # registry-wide

    history = PointerMove.objects.count()
    for call in (
        lambda: client.set_registered_model_alias("churn", "champion", "2"),
        lambda: client.delete_registered_model_alias("churn", "champion"),
    ):
        with pytest.raises(RestException) as excinfo:
            call()
        assert excinfo.value.error_code == "PERMISSION_DENIED"
        assert "Refused by the registry-wide alias policy of '@champion'" in str(excinfo.value)
        assert "'@champion' is protected" in str(excinfo.value)
    assert aliases() == {"champion": 1}
    assert PointerMove.objects.count() == history
    assert client.get_model_version_by_alias("churn", "champion").version == "1"
    assert client.get_registered_model("churn").aliases == {"champion": "1"}

    # Unprotected aliases of the same model: exactly as against mlflow server.
    client.set_registered_model_alias("churn", "challenger", "3")
    client.set_registered_model_alias("churn", "challenger", "2")
    assert client.get_model_version_by_alias("churn", "challenger").aliases == ["challenger"]
    client.delete_registered_model_alias("churn", "challenger")
    with pytest.raises(RestException) as excinfo:
        client.get_model_version_by_alias("churn", "challenger")
    assert excinfo.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "Registered model alias challenger not found." in str(excinfo.value)

    # The way through: a request, approved, moves it (the client then sees the new version).
    services.alias_request_create(actor=user, name="churn", alias="champion", version="2")
    services.alias_request_approve(actor=root, name="churn", alias="champion", version="2")
    assert client.get_model_version_by_alias("churn", "champion").version == "2"
    assert AliasRequest.objects.get().status == "APPROVED"


def test_the_deletion_guard_answers_the_client(client, user, django_user_model):
    client.create_registered_model("fraud")
    for n in range(1, 4):
        client.create_model_version("fraud", f"s3://models/fraud/{n}")
    client.transition_model_version_stage("fraud", "1", "Production")
    client.set_registered_model_alias("fraud", "champion", "2")
    client.set_registered_model_alias("fraud", "old", "3")
    services.alias_policy_set(actor=user, name="fraud", alias="champion", protected=True)

    for version, why in [("1", "it is in Production"), ("2", "protected alias '@champion'")]:
        with pytest.raises(RestException) as excinfo:
            client.delete_model_version("fraud", version)
        assert excinfo.value.error_code == "PERMISSION_DENIED"
        assert f"Version {version} of 'fraud' may not be deleted: {why}" in str(excinfo.value)
    # An unprotected alias goes with its version, as in MLflow.
    client.delete_model_version("fraud", "3")
    assert client.get_registered_model("fraud").aliases == {"champion": "2"}

    # The client sends no force flag: the model stays.
    with pytest.raises(RestException) as excinfo:
        client.delete_registered_model("fraud")
    assert excinfo.value.error_code == "PERMISSION_DENIED"
    assert "force=true" in str(excinfo.value)
    assert RegisteredModel.objects.filter(name="fraud").exists()
    # Once nothing is guarded, the client deletes it as before.
    client.transition_model_version_stage("fraud", "1", "Archived")
    services.alias_policy_delete(actor=user, name="fraud", alias="champion")
    client.delete_registered_model("fraud")
    assert not RegisteredModel.objects.exists()
