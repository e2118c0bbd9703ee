"""The unmodified ``databricks-sdk`` on the core registry calls it shares with MLflow.

The Databricks extensions (transition requests, comments, activities, permissions, registry
webhooks) are tested with their own features; this checks that the SDK's client, with its own
request encoding and HTTP Basic authentication, drives the core protocol.
"""

from __future__ import annotations

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import InvalidParameterValue, ResourceAlreadyExists, ResourceDoesNotExist
from databricks.sdk.service.ml import ModelTag

from registry.models import RegisteredModel
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def workspace(live_server, user, monkeypatch) -> WorkspaceClient:
    for name in ("DATABRICKS_HOST", "DATABRICKS_TOKEN", "DATABRICKS_CONFIG_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", "/nonexistent")  # no ~/.databrickscfg of the machine
    return WorkspaceClient(
        host=live_server.url, username=user.username, password=PASSWORD, auth_type="basic"
    )


def test_core_registry_calls(workspace, live_server):
    registry = workspace.model_registry
    created = registry.create_model(
        name="dbx-model", description="from the SDK", tags=[ModelTag(key="team", value="ml")]
    )
    assert created.registered_model.name == "dbx-model"

    registry.set_model_tag(name="dbx-model", key="tier", value="gold")
    registry.update_model(name="dbx-model", description="updated")
    version = registry.create_model_version(name="dbx-model", source="s3://b/dbx/1")
    assert version.model_version.version == "1"
    registry.set_model_version_tag(name="dbx-model", version="1", key="ok", value="yes")

    models = list(registry.search_models(filter="name LIKE 'dbx%'"))
    assert [m.name for m in models] == ["dbx-model"]
    assert {t.key: t.value for t in models[0].tags} == {"team": "ml", "tier": "gold"}
    versions = list(registry.search_model_versions(filter="name = 'dbx-model'"))
    assert [(v.version, v.current_stage) for v in versions] == [("1", "None")]
    latest = registry.get_latest_versions(name="dbx-model")
    assert [v.version for v in latest] == ["1"]
    # The managed copy under the service's artifact endpoints, not the source (docs/architecture.md,
    # "Artifacts").
    code = RegisteredModel.objects.get(name="dbx-model").code
    assert registry.get_model_version_download_uri(name="dbx-model", version="1").artifact_uri == (
        f"{live_server.url}/api/2.0/mlflow-artifacts/artifacts/models/{code}/1"
    )

    with pytest.raises(ResourceAlreadyExists):
        registry.create_model(name="dbx-model")
    with pytest.raises(InvalidParameterValue):
        registry.create_model(name="bad/name")

    registry.delete_model_version(name="dbx-model", version="1")
    registry.delete_model(name="dbx-model")
    with pytest.raises(ResourceDoesNotExist):
        registry.get_latest_versions(name="dbx-model")


def test_the_deletion_guard_answers_the_sdk(workspace, user):
    """Governed aliases' deletion guard (docs/decisions/0015-governed-aliases.md) through the
    SDK's own delete calls: a version in Production or named by a protected alias is refused
    with the reason, an unguarded one goes, and the model stays without ``force``."""
    from databricks.sdk.errors import PermissionDenied

    from registry import services

    registry = workspace.model_registry
    registry.create_model(name="guarded")
    for n in range(1, 4):
        registry.create_model_version(name="guarded", source=f"s3://b/guarded/{n}")
    services.model_version_stage_transition(
        actor=user, name="guarded", version="1", stage="Production", archive_existing_versions=False
    )
    services.registered_model_alias_set(actor=user, name="guarded", alias="champion", version="2")
    services.alias_policy_set(actor=user, name="guarded", alias="champion", protected=True)

    for version, why in [("1", "it is in Production"), ("2", "protected alias '@champion'")]:
        with pytest.raises(PermissionDenied, match=f"may not be deleted: {why}"):
            registry.delete_model_version(name="guarded", version=version)
    registry.delete_model_version(name="guarded", version="3")
    with pytest.raises(PermissionDenied, match="force=true"):
        registry.delete_model(name="guarded")
    assert RegisteredModel.objects.get(name="guarded").versions.count() == 2
