"""The unmodified ``mlflow`` client against a live server: the acceptance test of the protocol.

Every registry method of ``MlflowClient`` is driven over real HTTP (pytest-django's
``live_server`` on PostgreSQL) with HTTP Basic credentials, as a team would configure it.
"""

from __future__ import annotations

import warnings

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException, RestException

from registry.models import Activity, ModelVersion, RegisteredModel
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def client(live_server, user, monkeypatch) -> MlflowClient:
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user.username)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORD)
    # A server error must fail the test at once, not after minutes of client retries.
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    mlflow.set_tracking_uri(live_server.url)
    mlflow.set_registry_uri(live_server.url)
    warnings.simplefilter("ignore", FutureWarning)  # stages are deprecated client-side
    return MlflowClient(tracking_uri=live_server.url, registry_uri=live_server.url)


def _error_code(excinfo: pytest.ExceptionInfo[MlflowException]) -> str:
    return excinfo.value.error_code


def test_registered_model_lifecycle(client):
    created = client.create_registered_model(
        "fraud", tags={"team": "risk", "x y": "z"}, description="Fraud scoring"
    )
    assert created.name == "fraud"
    assert created.description == "Fraud scoring"
    assert created.tags == {"team": "risk", "x y": "z"}
    assert created.creation_timestamp == created.last_updated_timestamp > 0

    client.update_registered_model("fraud", description="Scores card payments")
    client.set_registered_model_tag("fraud", "owner", 12345)
    client.delete_registered_model_tag("fraud", "x y")
    fetched = client.get_registered_model("fraud")
    assert fetched.description == "Scores card payments"
    assert fetched.tags == {"team": "risk", "owner": "12345"}
    assert fetched.last_updated_timestamp >= created.last_updated_timestamp

    client.rename_registered_model("fraud", "fraud-scoring")
    assert client.get_registered_model("fraud-scoring").tags == {"team": "risk", "owner": "12345"}
    with pytest.raises(MlflowException) as excinfo:
        client.get_registered_model("fraud")
    assert _error_code(excinfo) == "RESOURCE_DOES_NOT_EXIST"

    client.delete_registered_model("fraud-scoring")
    with pytest.raises(MlflowException) as excinfo:
        client.get_registered_model("fraud-scoring")
    assert _error_code(excinfo) == "RESOURCE_DOES_NOT_EXIST"


def test_error_cases_surface_as_client_exceptions(client):
    client.create_registered_model("dup")
    with pytest.raises(RestException) as excinfo:
        client.create_registered_model("dup")
    assert _error_code(excinfo) == "RESOURCE_ALREADY_EXISTS"
    assert "Registered Model (name=dup) already exists." in str(excinfo.value)

    with pytest.raises(RestException) as excinfo:
        client.get_registered_model("missing")
    assert _error_code(excinfo) == "RESOURCE_DOES_NOT_EXIST"

    with pytest.raises(RestException) as excinfo:
        client.get_model_version("dup", "7")
    assert _error_code(excinfo) == "RESOURCE_DOES_NOT_EXIST"

    client.create_model_version("dup", "s3://bucket/dup/1")
    with pytest.raises(RestException) as excinfo:
        client.transition_model_version_stage("dup", "1", "Prod")
    assert _error_code(excinfo) == "INVALID_PARAMETER_VALUE"
    assert "Invalid Model Version stage: Prod" in str(excinfo.value)

    with pytest.raises(RestException) as excinfo:
        client.search_registered_models(filter_string="name = 'dup' OR name = 'x'")
    assert _error_code(excinfo) == "INVALID_PARAMETER_VALUE"

    with pytest.raises(RestException) as excinfo:
        client.search_model_versions("current_stage = 'Production'")
    assert _error_code(excinfo) == "INVALID_PARAMETER_VALUE"

    with pytest.raises(RestException) as excinfo:
        client.create_registered_model("bad/name")
    assert _error_code(excinfo) == "INVALID_PARAMETER_VALUE"


def test_model_versions_tags_and_download_uri(client):
    client.create_registered_model("churn")
    v1 = client.create_model_version(
        "churn",
        "s3://models/churn/1",
        run_id="a" * 32,
        tags={"validation_status": "pending"},
        description="first",
    )
    assert (v1.version, v1.current_stage, v1.status) == ("1", "None", "READY")
    assert v1.tags == {"validation_status": "pending"}
    assert v1.run_id == "a" * 32

    client.update_model_version("churn", "1", description="first, retrained")
    client.set_model_version_tag("churn", "1", "validation_status", "passed")
    client.set_model_version_tag("churn", "1", "temp", "x")
    client.delete_model_version_tag("churn", "1", "temp")
    fetched = client.get_model_version("churn", "1")
    assert fetched.description == "first, retrained"
    assert fetched.tags == {"validation_status": "passed"}
    # The managed copy under the service's artifact endpoints, not the source (docs/architecture.md,
    # "Artifacts").
    code = RegisteredModel.objects.get(name="churn").code
    assert client.get_model_version_download_uri("churn", "1") == (
        f"{client._registry_uri}/api/2.0/mlflow-artifacts/artifacts/models/{code}/1"
    )

    client.create_model_version("churn", "s3://models/churn/2")
    client.create_model_version("churn", "s3://models/churn/3")
    client.delete_model_version("churn", "3")
    with pytest.raises(RestException) as excinfo:
        client.get_model_version("churn", "3")
    assert _error_code(excinfo) == "RESOURCE_DOES_NOT_EXIST"
    # A deleted number is never given out again.
    assert client.create_model_version("churn", "s3://models/churn/4").version == "4"


def test_register_model_onto_an_existing_name(client):
    client.create_registered_model("existing")
    first = mlflow.register_model("s3://models/existing/a", "existing")
    second = mlflow.register_model("s3://models/existing/b", "existing")
    assert (first.version, second.version) == ("1", "2")
    assert [v.version for v in client.search_model_versions("name = 'existing'")] == ["2", "1"]


def test_aliases_including_latest(client):
    client.create_registered_model("recsys")
    for n in range(1, 4):
        client.create_model_version("recsys", f"s3://models/recsys/{n}")
    client.set_registered_model_alias("recsys", "champion", "2")
    client.set_registered_model_alias("recsys", "challenger", "3")
    client.set_registered_model_alias("recsys", "challenger", "1")  # re-pointing moves it

    champion = client.get_model_version_by_alias("recsys", "champion")
    assert champion.version == "2"
    assert champion.aliases == ["champion"]
    assert client.get_model_version_by_alias("recsys", "latest").version == "3"
    assert client.get_model_version_by_alias("recsys", "LATEST").version == "3"
    assert client.get_registered_model("recsys").aliases == {"champion": "2", "challenger": "1"}

    for reserved in ("latest", "v7"):
        with pytest.raises(RestException) as excinfo:
            client.set_registered_model_alias("recsys", reserved, "1")
        assert _error_code(excinfo) == "INVALID_PARAMETER_VALUE"

    client.delete_registered_model_alias("recsys", "challenger")
    with pytest.raises(RestException) as excinfo:
        client.get_model_version_by_alias("recsys", "challenger")
    assert _error_code(excinfo) == "INVALID_PARAMETER_VALUE"
    assert "Registered model alias challenger not found." in str(excinfo.value)

    client.delete_model_version("recsys", "2")  # its aliases go with it
    assert client.get_registered_model("recsys").aliases == {}


def test_stage_transitions_and_latest_versions(client, user):
    client.create_registered_model("pricing")
    for n in range(1, 5):
        client.create_model_version("pricing", f"s3://models/pricing/{n}")

    assert client.transition_model_version_stage("pricing", "1", "production").current_stage == (
        "Production"
    )
    client.transition_model_version_stage("pricing", "2", "Production")  # no archiving
    assert [v.version for v in client.get_latest_versions("pricing", ["Production"])] == ["2"]
    assert client.get_model_version("pricing", "1").current_stage == "Production"

    moved = client.transition_model_version_stage(
        "pricing", "3", "Production", archive_existing_versions=True
    )
    assert moved.current_stage == "Production"
    assert client.get_model_version("pricing", "1").current_stage == "Archived"
    assert client.get_model_version("pricing", "2").current_stage == "Archived"
    client.transition_model_version_stage("pricing", "4", "Staging")

    latest = {v.current_stage: v.version for v in client.get_latest_versions("pricing")}
    assert latest == {"Archived": "2", "Production": "3", "Staging": "4"}
    assert [v.version for v in client.get_latest_versions("pricing", ["Staging"])] == ["4"]
    stages_in_model = {
        v.current_stage: v.version for v in client.get_registered_model("pricing").latest_versions
    }
    assert stages_in_model == {"Archived": "2", "Production": "3", "Staging": "4"}

    with pytest.raises(RestException) as excinfo:
        client.transition_model_version_stage(
            "pricing", "4", "None", archive_existing_versions=True
        )
    assert _error_code(excinfo) == "INVALID_PARAMETER_VALUE"

    # Every move is on the trail, the archived ones as system transitions.
    trail = list(
        Activity.objects.filter(model_name="pricing").values_list(
            "version", "activity_type", "from_stage", "to_stage", "actor_username"
        )
    )
    assert trail == [
        (1, "APPLIED_TRANSITION", "None", "Production", "alice"),
        (2, "APPLIED_TRANSITION", "None", "Production", "alice"),
        (1, "SYSTEM_TRANSITION", "Production", "Archived", "alice"),
        (2, "SYSTEM_TRANSITION", "Production", "Archived", "alice"),
        (3, "APPLIED_TRANSITION", "None", "Production", "alice"),
        (4, "APPLIED_TRANSITION", "None", "Staging", "alice"),
    ]


def test_search_registered_models_filters_order_and_paging(client):
    for name, team in [("alpha", "a"), ("beta", "b"), ("gamma", "a"), ("Alpine", "c")]:
        client.create_registered_model(name, tags={"team": team})
    client.create_registered_model("untagged")

    def names(**kwargs):
        return [m.name for m in client.search_registered_models(**kwargs)]

    assert names() == ["Alpine", "alpha", "beta", "gamma", "untagged"]
    assert names(filter_string="name LIKE 'al%'") == ["alpha"]
    assert names(filter_string="name ILIKE 'al%'") == ["Alpine", "alpha"]
    assert names(filter_string="tags.team = 'a'") == ["alpha", "gamma"]
    assert names(filter_string="tags.team != 'a'") == ["Alpine", "beta"]
    assert names(filter_string="name IN ('beta', 'gamma')") == ["beta", "gamma"]
    assert names(order_by=["name DESC"]) == ["untagged", "gamma", "beta", "alpha", "Alpine"]

    first = client.search_registered_models(max_results=2, order_by=["name ASC"])
    assert [m.name for m in first] == ["Alpine", "alpha"]
    assert first.token
    second = client.search_registered_models(
        max_results=2, order_by=["name ASC"], page_token=first.token
    )
    assert [m.name for m in second] == ["beta", "gamma"]
    third = client.search_registered_models(
        max_results=2, order_by=["name ASC"], page_token=second.token
    )
    assert [m.name for m in third] == ["untagged"]
    assert not third.token


def test_search_model_versions_filters_order_and_paging(client):
    client.create_registered_model("m1")
    client.create_registered_model("m2")
    run_a, run_b = "a" * 32, "b" * 32
    for n in range(1, 6):
        client.create_model_version(
            "m1", f"s3://models/m1/{n}", run_id=run_a if n % 2 else run_b, tags={"n": str(n)}
        )
    client.create_model_version("m2", "s3://models/m2/1", run_id=run_b, tags={"n": "1"})

    def versions(filter_string, **kwargs):
        return [(v.name, v.version) for v in client.search_model_versions(filter_string, **kwargs)]

    assert versions("name = 'm1' AND version_number >= 4", order_by=["version_number ASC"]) == [
        ("m1", "4"),
        ("m1", "5"),
    ]
    assert versions(f"run_id IN ('{run_b}')", order_by=["name", "version_number"]) == [
        ("m1", "2"),
        ("m1", "4"),
        ("m2", "1"),
    ]
    assert versions("tags.n = '1'", order_by=["name ASC"]) == [("m1", "1"), ("m2", "1")]
    assert versions("name LIKE 'm%'", order_by=["version_number DESC", "name ASC"])[:2] == [
        ("m1", "5"),
        ("m1", "4"),
    ]

    seen = []
    token = None
    pages = 0
    while True:
        page = client.search_model_versions(
            "name = 'm1'", max_results=2, order_by=["version_number ASC"], page_token=token
        )
        seen.extend(v.version for v in page)
        pages += 1
        token = page.token
        if not token:
            break
    assert seen == ["1", "2", "3", "4", "5"]
    assert pages == 3
    assert ModelVersion.objects.count() == 6
