"""The MLflow workflow every user takes, against a real tracking server.

An ``mlflow server`` (the pinned version in ``.venv-mlflow``) is the tracking server, once with
its default artifact proxy and once with an ``s3://`` artifact root on the test S3 server; the
registry (web server and Celery worker in their own processes) is the registry, configured with
``MLFLOW_TRACKING_SERVER_URL``. The unmodified ``mlflow`` client logs models in runs on the
tracking server and registers them in the registry, as MLflow's documentation tells a user to:
``mlflow.set_tracking_uri(<tracking server>)``, ``mlflow.set_registry_uri(<registry>)``.
"""

from __future__ import annotations

import json
import os
import urllib.request
import warnings

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient

from tests.processes import SOURCE_BUCKET, MlflowServer, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.real_artifact_copy]

UNKNOWN_RUN = "0123456789abcdef0123456789abcdef"
UNKNOWN_LOGGED_MODEL = "m-0123456789abcdef0123456789abcdef"


@pytest.fixture(params=["proxy", "s3"])
def tracking_server(request, moto_server, tmp_path):
    server = MlflowServer(
        tmp_path / "mlflow",
        s3_root=f"s3://{SOURCE_BUCKET}/mlflow" if request.param == "s3" else "",
        moto=moto_server,
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
def stack_env(tracking_server):
    return {
        "MLFLOW_TRACKING_SERVER_URL": tracking_server.url,
        # Long enough that a copy on a loaded machine still ends inside the create call: the
        # test checks that create answers READY once the copy is done, not how fast it is.
        "ARTIFACT_REGISTRATION_WAIT_SECONDS": "30",
    }


@pytest.fixture
def token(user):
    from accounts.services import api_token_create

    return api_token_create(actor=None, user=user, name="tracking").secret


@pytest.fixture
def client(monkeypatch, tracking_server, registry_stack, token):
    """The client as a user configures it: tracking on the tracking server, the registry here,
    the registry's token; storage credentials only where the tracking server's artifact root
    is ``s3://`` (the client writes there itself)."""
    for name in list(os.environ):
        if name.startswith(("AWS_", "MLFLOW_")):
            monkeypatch.delenv(name)
    for name, value in tracking_server.s3_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    mlflow.set_tracking_uri(tracking_server.url)
    mlflow.set_registry_uri(registry_stack.url)
    warnings.simplefilter("ignore", FutureWarning)  # stages are deprecated client-side
    yield MlflowClient(tracking_uri=tracking_server.url, registry_uri=registry_stack.url)
    mlflow.set_tracking_uri("")
    mlflow.set_registry_uri("")


@pytest.fixture
def trained():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(11)
    features = rng.normal(size=(200, 4))
    labels = (features[:, 0] - 0.3 * features[:, 2] > 0).astype(int)
    return LogisticRegression().fit(features, labels), features


def _raw_version(stack, token: str, name: str, version: str) -> dict:
    """The version's JSON as the registry answers it (fields the client does not keep)."""
    request = urllib.request.Request(
        f"{stack.url}/api/2.0/mlflow/model-versions/get?name={name}&version={version}",
        headers={"Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return json.loads(response.read())["model_version"]


def _predicts_like(uri: str, model, features) -> bool:
    return bool((mlflow.pyfunc.load_model(uri).predict(features) == model.predict(features)).all())


def test_log_register_copy_and_load_through_the_tracking_server(
    client, tracking_server, registry_stack, token, trained, tmp_path
):
    model, features = trained
    try:
        # log_model(..., registered_model_name=...) in a run: MLflow 3 registers the logged
        # model as models:/<logged model id>, with no run id.
        with mlflow.start_run() as run:
            logged = mlflow.sklearn.log_model(
                model, name="model", registered_model_name="churn", pip_requirements=["sklearn"]
            )
        run_id = run.info.run_id
        first = client.get_model_version("churn", "1")
        assert (first.status, first.status_message) == ("READY", "")
        assert first.source == f"models:/{logged.model_id}"
        assert first.run_id == run_id  # the logged model's source run, looked up
        assert first.tags == {}  # what users set, nothing of the registry's own
        raw = _raw_version(registry_stack, token, "churn", "1")
        assert raw["model_id"] == logged.model_id
        digest = raw["artifact_digest"]
        assert digest.startswith("sha256:")

        # Loading through the registry: its own copy, through its API.
        assert _predicts_like("models:/churn/1", model, features)
        client.set_registered_model_alias("churn", "champion", "1")
        assert _predicts_like("models:/churn@champion", model, features)

        # register_model from runs:/ of a logged model (the client turns it into models:/).
        second = mlflow.register_model(f"runs:/{run_id}/model", "churn")
        assert (second.version, second.status) == ("2", "READY")
        assert _raw_version(registry_stack, token, "churn", "2")["artifact_digest"] == digest

        # The same runs:/ source as another client sends it: the run's folder holds no model
        # in MLflow 3, so the registry finds the logged model of that name. create answers
        # READY because it waited for the copy (ARTIFACT_REGISTRATION_WAIT_SECONDS).
        third = client.create_model_version(
            "churn", f"runs:/{run_id}/model", run_id=run_id, await_creation_for=0
        )
        assert (third.version, third.status) == ("3", "READY")
        raw = _raw_version(registry_stack, token, "churn", "3")
        assert (raw["model_id"], raw["artifact_digest"]) == (logged.model_id, digest)

        # Plain run artifacts, the MLflow 2 way: files logged with log_artifacts.
        saved = tmp_path / "saved"
        mlflow.sklearn.save_model(model, str(saved), pip_requirements=["sklearn"])
        with mlflow.start_run() as plain_run:
            mlflow.log_artifacts(str(saved), "exported")
        fourth = mlflow.register_model(f"runs:/{plain_run.info.run_id}/exported", "churn")
        assert (fourth.version, fourth.status) == ("4", "READY")
        expected_scheme = "s3://" if tracking_server.s3_root else "mlflow-artifacts:/"
        assert fourth.source.startswith(expected_scheme)
        assert fourth.source.endswith("/exported")
        assert _predicts_like("models:/churn/4", model, features)

        # A copy between models (dev to prod), as MLflow documents it: same files, same digest.
        copied = client.copy_model_version("models:/churn@champion", "churn-prod")
        assert (copied.name, copied.version, copied.status) == ("churn-prod", "1", "READY")
        copied = client.get_model_version("churn-prod", "1")
        assert (copied.source, copied.run_id) == ("models:/churn/1", run_id)
        assert _raw_version(registry_stack, token, "churn-prod", "1")["artifact_digest"] == digest
        assert _predicts_like("models:/churn-prod/1", model, features)

        found = client.search_model_versions(f"run_id = '{run_id}'")
        assert {(v.name, v.version) for v in found} == {
            ("churn", "1"),
            ("churn", "2"),
            ("churn", "3"),
            ("churn-prod", "1"),
        }

        # What the tracking server does not know fails the registration, naming it.
        unknown_run = client.create_model_version(
            "churn", f"runs:/{UNKNOWN_RUN}/model", await_creation_for=0
        )
        unknown_model = client.create_model_version(
            "churn", f"models:/{UNKNOWN_LOGGED_MODEL}", await_creation_for=0
        )
        for version, missing in ((unknown_run, UNKNOWN_RUN), (unknown_model, UNKNOWN_LOGGED_MODEL)):

            def failed(number=version.version):
                return client.get_model_version("churn", number).status == "FAILED_REGISTRATION"

            wait_for(failed, 60, f"version {version.version} to fail")
            message = client.get_model_version("churn", version.version).status_message
            assert missing in message
            assert "not found" in message
    except BaseException:
        print(registry_stack.logs())  # noqa: T201 - shown by pytest on failure
        print(tracking_server.log())  # noqa: T201
        raise
