"""What a version may be registered from (docs/architecture.md, "Artifacts"): the checks made
in the request, copies between models, reference mode, and the answer a tracking call gets.

The copies themselves, against a real tracking server and worker, are in
``tests/registry/artifacts/test_tracking_server.py``.
"""

from __future__ import annotations

import warnings

import mlflow
import pytest
from django.contrib.auth import get_user_model
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from registry import services
from registry.models import ModelVersion, ModelVersionStatus
from tests.conftest import PASSWORD, basic_auth

pytestmark = pytest.mark.django_db

CREATE = "/api/2.0/mlflow/model-versions/create"
DIGEST = "sha256:" + "ab" * 32


@pytest.fixture
def tracking(settings):
    settings.ARTIFACTS = {
        **settings.ARTIFACTS,
        "MLFLOW_TRACKING_SERVER_URL": "http://127.0.0.1:9",
    }


@pytest.fixture
def no_tracking(settings):
    settings.ARTIFACTS = {**settings.ARTIFACTS, "MLFLOW_TRACKING_SERVER_URL": ""}


@pytest.fixture
def reference(settings):
    settings.ARTIFACTS = {**settings.ARTIFACTS, "MODE": "reference"}


@pytest.fixture
def model(user):
    return services.registered_model_create(actor=user, name="churn")


def _create(api, **body):
    return api.post(CREATE, {"name": "churn", **body}, format="json")


def _error(response, status: int = 400) -> dict:
    assert response.status_code == status, response.content
    return response.json()


# --- Checks in the request --------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "s3://registry",  # the bucket root holds the store
        "s3://registry/",
        "s3://registry/models-store",
        "s3://registry/models-store/models/x/1",
    ],
)
def test_sources_that_hold_or_lie_in_the_store_are_refused(api, model, settings, source):
    settings.ARTIFACT_STORE_URI = "s3://registry/models-store"
    body = _error(_create(api, source=source))
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "own artifact store" in body["message"]
    assert not ModelVersion.objects.exists()


@pytest.mark.parametrize(
    "location", ["s3://registry", "s3://registry/models-store/models/x/1/model"]
)
def test_locations_a_tracking_server_answers_are_checked_against_the_store(settings, location):
    """A run or logged model whose artifact_uri points into the store (or holds it) is refused
    in the copy task, like an s3:// source is in the request."""
    from registry.artifacts.errors import SourceError
    from registry.artifacts.sources.tracking import _location_source

    settings.ARTIFACT_STORE_URI = "s3://registry/models-store"
    with pytest.raises(SourceError, match="inside the registry's own store"):
        _location_source(location, what="Run abc")


@pytest.mark.parametrize("inside", ["", "store", "store/uploads/owner/model", "store/models"])
def test_file_sources_never_open_a_local_store(api, model, settings, tmp_path, inside):
    """An allowed file root that holds the local store (``/srv`` with the store in
    ``/srv/registry``) must not open it: other users' upload areas and other models' copies
    would be read past their checks."""
    (tmp_path / "store/uploads/owner/model").mkdir(parents=True)
    (tmp_path / "store/models").mkdir(parents=True, exist_ok=True)
    (tmp_path / "store/uploads/owner/model/MLmodel").write_text("flavors: {}")
    settings.ARTIFACT_STORE_URI = (tmp_path / "store").as_uri()
    settings.ARTIFACTS = {**settings.ARTIFACTS, "FILE_SOURCE_ROOTS": [str(tmp_path)]}
    body = _error(_create(api, source=(tmp_path / inside).as_uri()))
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "own artifact store" in body["message"]
    assert not ModelVersion.objects.exists()

    (tmp_path / "training").mkdir()
    (tmp_path / "training/MLmodel").write_text("flavors: {}")
    assert _create(api, source=(tmp_path / "training").as_uri()).status_code == 200


def test_a_sibling_folder_of_the_store_is_a_source(api, model, settings):
    settings.ARTIFACT_STORE_URI = "s3://registry/models-store"
    assert _create(api, source="s3://registry/training/run-1").status_code == 200


@pytest.mark.usefixtures("no_tracking")
@pytest.mark.parametrize(
    "source",
    ["runs:/abc123/model", "models:/m-abc123", "mlflow-artifacts:/1/abc123/artifacts/model"],
)
def test_tracking_sources_need_a_tracking_server(api, model, source):
    body = _error(_create(api, source=source))
    assert "MLFLOW_TRACKING_SERVER_URL" in body["message"]


@pytest.mark.usefixtures("tracking")
def test_tracking_sources_are_taken_with_a_tracking_server(api, model):
    for number, source in enumerate(
        ["runs:/abc123/model", "models:/m-abc123", "mlflow-artifacts:/1/abc123/artifacts/model"],
        start=1,
    ):
        response = _create(api, source=source)
        assert response.status_code == 200, response.content
        assert response.json()["model_version"]["version"] == str(number)
    # The logged model's id is recorded from the source when the client sends none.
    assert ModelVersion.objects.get(version=2).model_id == "m-abc123"


@pytest.mark.usefixtures("tracking")
@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("mlflow-artifacts://tracking:5000/1/abc/artifacts", "not a host in the URI"),
        ("mlflow-artifacts:/1/abc/../../uploads/x", "'..' is not allowed"),
        ("models:/m-a b", "expected models:/<logged model id>"),
        ("runs:/a b/model", "expected runs:/<run_id>/<path>"),
    ],
)
def test_malformed_tracking_sources_are_refused(api, model, source, message):
    assert message in _error(_create(api, source=source))["message"]


@pytest.mark.usefixtures("tracking")
def test_model_id_must_match_a_logged_model_source(api, model):
    body = _error(_create(api, source="models:/m-abc123", model_id="m-other"))
    assert "does not match" in body["message"]
    response = _create(api, source="models:/m-abc123", model_id="m-abc123")
    assert response.json()["model_version"]["model_id"] == "m-abc123"


# --- Copies between models --------------------------------------------------------------------


def _ready(user, name: str, source: str, digest: str = DIGEST) -> ModelVersion:
    version = services.model_version_create(actor=user, name=name, source=source)
    ModelVersion.objects.filter(pk=version.pk).update(artifact_digest=digest)
    return version


@pytest.mark.parametrize(
    "reference_source", ["models:/churn/1", "models:/churn@champion", "models:/churn/Production"]
)
def test_a_copy_records_the_concrete_version_it_copies(api, user, model, reference_source):
    _ready(user, "churn", "s3://b/churn/1")
    services.registered_model_alias_set(actor=user, name="churn", alias="champion", version="1")
    services.model_version_stage_transition(
        actor=user, name="churn", version="1", stage="Production"
    )
    services.registered_model_create(actor=user, name="churn-prod")

    response = api.post(CREATE, {"name": "churn-prod", "source": reference_source}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["model_version"]["source"] == "models:/churn/1"
    copy = ModelVersion.objects.get(registered_model__name="churn-prod")
    assert copy.copied_from == ModelVersion.objects.get(registered_model__name="churn", version=1)
    assert not copy.is_reference


def test_a_copy_needs_read_access_to_the_model_it_copies(api, user, settings):
    settings.REGISTRY = {**settings.REGISTRY, "DEFAULT_PERMISSION_LEVEL": "NONE"}
    owner = get_user_model().objects.create_user("owner", password=PASSWORD)
    services.registered_model_create(actor=owner, name="secret")
    _ready(owner, "secret", "s3://b/secret/1")
    services.registered_model_create(actor=user, name="mine")

    body = _error(
        api.post(CREATE, {"name": "mine", "source": "models:/secret/1"}, format="json"), 403
    )

    assert body["error_code"] == "PERMISSION_DENIED"
    assert not ModelVersion.objects.filter(registered_model__name="mine").exists()


def test_copies_of_missing_or_unready_versions_are_refused(api, user, model):
    assert _error(_create(api, source="models:/churn/7"), 404)["error_code"] == (
        "RESOURCE_DOES_NOT_EXIST"
    )
    assert "name=nope not found" in _error(_create(api, source="models:/nope/1"), 404)["message"]
    pending = services.model_version_create(actor=user, name="churn", source="s3://b/1")
    ModelVersion.objects.filter(pk=pending.pk).update(
        status=ModelVersionStatus.PENDING_REGISTRATION
    )
    assert "PENDING_REGISTRATION" in _error(_create(api, source="models:/churn/1"))["message"]
    assert "without a sub-path" in _error(_create(api, source="models:/churn/1/sub"))["message"]


# --- Digest and model id in searches ----------------------------------------------------------


def test_versions_are_found_by_digest_and_logged_model(api, user, model, tracking):
    _ready(user, "churn", "s3://b/1")
    _ready(user, "churn", "s3://b/2", digest="sha256:" + "cd" * 32)
    services.model_version_create(actor=user, name="churn", source="models:/m-abc123")

    def found(filter_string: str) -> list[str]:
        response = api.get("/api/2.0/mlflow/model-versions/search", {"filter": filter_string})
        assert response.status_code == 200, response.content
        return sorted(v["version"] for v in response.json().get("model_versions", []))

    assert found(f"artifact_digest = '{DIGEST}'") == ["1"]
    assert found("artifact_digest LIKE 'sha256:%'") == ["1", "2"]
    assert found("model_id = 'm-abc123'") == ["3"]


# --- Reference mode ---------------------------------------------------------------------------


@pytest.fixture
def client(live_server, user, monkeypatch) -> MlflowClient:
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user.username)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORD)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    warnings.simplefilter("ignore", FutureWarning)
    return MlflowClient(tracking_uri=live_server.url, registry_uri=live_server.url)


@pytest.mark.real_artifact_copy  # no stand-in: READY must come from reference mode itself
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("reference")
def test_reference_mode_keeps_sources_as_pointers(client, live_server, user):
    client.create_registered_model("ref")
    version = client.create_model_version(
        "ref", "runs:/run_id/model", "run_id_1", tags={"k": "v"}, await_creation_for=0
    )
    assert (version.status, version.tags) == ("READY", {"k": "v"})
    assert client.get_model_version_download_uri("ref", "1") == "runs:/run_id/model"

    # A copy of a reference is a reference to the same files.
    client.set_registered_model_alias("ref", "a", "1")
    copied = client.copy_model_version("models:/ref@a", "ref")
    assert (copied.version, copied.status) == ("2", "READY")
    assert client.get_model_version("ref", "2").source == "models:/ref/1"
    assert client.get_model_version_download_uri("ref", "2") == "runs:/run_id/model"

    # Policies and stages work as ever.
    client.transition_model_version_stage("ref", "1", "Production")
    assert client.get_model_version("ref", "1").current_stage == "Production"

    from rest_framework.test import APIClient

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=basic_auth(user.username))
    raw = api.get("/api/2.0/mlflow/model-versions/get", {"name": "ref", "version": "1"}).json()
    assert raw["model_version"]["artifact_digest"] == ""
    manifest = api.get(
        "/api/2.0/registry/model-versions/manifest", {"name": "ref", "version": "1"}
    ).json()
    assert manifest["storage_location"] == "runs:/run_id/model"
    assert "manifest" not in manifest

    with pytest.raises(MlflowException, match="not a local path"):
        client.create_model_version("ref", "file:///etc/model", await_creation_for=0)


@pytest.mark.usefixtures("reference")
def test_uploads_are_copied_even_in_reference_mode(user, model):
    version = services.model_version_create(
        actor=user, name="churn", source="mlflow-artifacts:/uploads/alice/model"
    )
    assert not version.is_reference


# --- Tracking calls that reach the registry ---------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_tracking_call_says_where_tracking_lives(live_server, user, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user.username)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORD)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    mlflow.set_tracking_uri(live_server.url)
    try:
        with pytest.raises(MlflowException) as caught, mlflow.start_run():
            pass
    finally:
        mlflow.set_tracking_uri("")
    message = str(caught.value)
    assert "model registry" in message
    assert "MLFLOW_TRACKING_URI" in message
    assert "MLFLOW_REGISTRY_URI" in message
    assert live_server.url in message
