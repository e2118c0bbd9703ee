"""Managed artifacts end to end: the unmodified ``mlflow`` client, the registry's web server and
a real Celery worker in their own processes, and an S3-compatible server (moto) in its own.

The client is given the registry URL and an API token only: no storage credentials. It
registers a version from ``s3://`` (or from files it uploaded through the artifact endpoints),
waits for READY as it does for any PENDING_REGISTRATION version, and loads the model through
``models:/``; the bytes come from the registry's managed copy, through its API.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import urllib.request
import warnings
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from tests.registry.artifacts.conftest import SOURCE_BUCKET, STORE_BUCKET, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.real_artifact_copy]


@pytest.fixture
def trained(tmp_path):
    """A scikit-learn model saved with ``mlflow.sklearn.save_model`` (skops, the default)."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(7)
    features = rng.normal(size=(200, 4))
    labels = (features[:, 0] + 0.5 * features[:, 1] > 0).astype(int)
    model = LogisticRegression().fit(features, labels)
    path = tmp_path / "saved-model"
    mlflow.sklearn.save_model(model, str(path), pip_requirements=["scikit-learn"])
    return model, path, features


def _files(folder: Path) -> dict[str, str]:
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def _upload_folder(s3, folder: Path, bucket: str, prefix: str) -> None:
    for relative in _files(folder):
        s3.upload_file(str(folder / relative), bucket, f"{prefix}/{relative}")


def _stored(s3, prefix: str) -> dict[str, str]:
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=STORE_BUCKET, Prefix=prefix):
        for item in page.get("Contents", []):
            body = s3.get_object(Bucket=STORE_BUCKET, Key=item["Key"])["Body"].read()
            found[item["Key"][len(prefix) :]] = hashlib.sha256(body).hexdigest()
    return found


def _api_get(stack, path: str) -> dict:
    request = urllib.request.Request(
        f"{stack.url}{path}",
        headers={"Authorization": f"Bearer {os.environ['MLFLOW_TRACKING_TOKEN']}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return json.loads(response.read())


def _client() -> MlflowClient:
    warnings.simplefilter("ignore", FutureWarning)  # stages are deprecated client-side
    return MlflowClient()


def _assert_no_storage_credentials() -> None:
    leaked = {
        name
        for name in os.environ
        if name.startswith("AWS_")
        and name not in {"AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"}
    }
    assert leaked == set()


def test_register_from_s3_then_load_from_production(client_env, moto_server, trained):
    model, folder, features = trained
    s3 = moto_server.client()
    _upload_folder(s3, folder, SOURCE_BUCKET, "runs/r1/model")
    _assert_no_storage_credentials()
    client = _client()
    client.create_registered_model("fraud")

    client.create_model_version("fraud", f"s3://{SOURCE_BUCKET}/runs/r1/model")

    version = client.get_model_version("fraud", "1")
    assert (version.status, version.status_message) == ("READY", "")
    manifest = _api_get(
        client_env, "/api/2.0/registry/model-versions/manifest?name=fraud&version=1"
    )
    expected = _files(folder)
    assert {f["path"]: f["sha256"] for f in manifest["manifest"]["files"]} == expected
    assert manifest["manifest"]["file_count"] == len(expected)
    # The digest is the registry's fact, not a tag: the client's tags are what users set.
    assert version.tags == {}
    assert (
        _api_get(client_env, "/api/2.0/mlflow/model-versions/get?name=fraud&version=1")[
            "model_version"
        ]["artifact_digest"]
        == manifest["manifest"]["digest"]
    )
    sha256sum = "".join(f"{sha}  {path}\n" for path, sha in sorted(expected.items()))
    assert (
        manifest["manifest"]["digest"] == "sha256:" + hashlib.sha256(sha256sum.encode()).hexdigest()
    )
    # The managed copy in the registry's own bucket holds exactly the source's bytes.
    assert _stored(s3, f"models-store/{manifest['artifact_path']}/") == expected

    client.transition_model_version_stage("fraud", "1", "Production")
    loaded = mlflow.pyfunc.load_model("models:/fraud/Production")
    np.testing.assert_array_equal(loaded.predict(features), model.predict(features))

    # The source can go away: the registry serves its own copy.
    s3.delete_objects(
        Bucket=SOURCE_BUCKET,
        Delete={"Objects": [{"Key": f"runs/r1/model/{path}"} for path in expected]},
    )
    again = mlflow.pyfunc.load_model("models:/fraud/1")
    np.testing.assert_array_equal(again.predict(features), model.predict(features))

    # Deleting the version deletes its copy, after the commit (out of Production first: a
    # version in Production is guarded).
    client.transition_model_version_stage("fraud", "1", "Archived")
    client.delete_model_version("fraud", "1")
    # Listing only: an object listed and then fetched could be deleted in between.
    wait_for(
        lambda: (
            s3.list_objects_v2(
                Bucket=STORE_BUCKET, Prefix=f"models-store/{manifest['artifact_path']}/"
            ).get("KeyCount")
            == 0
        ),
        30,
        "the copy to be deleted",
    )


def test_register_uploaded_files_then_load(client_env, moto_server, trained):
    from mlflow.store.artifact.http_artifact_repo import HttpArtifactRepository

    model, folder, features = trained
    _assert_no_storage_credentials()
    uploads = f"{client_env.url}/api/2.0/mlflow-artifacts/artifacts/uploads/alice/fraud-v2"
    HttpArtifactRepository(uploads).log_artifacts(str(folder))
    client = _client()
    client.create_registered_model("fraud-up")

    client.create_model_version("fraud-up", "mlflow-artifacts:/uploads/alice/fraud-v2")

    assert client.get_model_version("fraud-up", "1").status == "READY"
    manifest = _api_get(
        client_env, "/api/2.0/registry/model-versions/manifest?name=fraud-up&version=1"
    )
    assert {f["path"]: f["sha256"] for f in manifest["manifest"]["files"]} == _files(folder)
    loaded = mlflow.pyfunc.load_model("models:/fraud-up/1")
    np.testing.assert_array_equal(loaded.predict(features), model.predict(features))


def test_another_user_can_neither_replace_delete_nor_register_uploaded_files(
    client_env, moto_server, trained, django_user_model, monkeypatch, tmp_path
):
    """The attack on a shared staging area, with the real client: bob, who may upload and may
    create versions of the model, overwrites a file alice uploaded before she registers it,
    deletes her folder and registers her files himself. Each is refused and changes nothing;
    alice's version holds her bytes."""
    from mlflow.store.artifact.http_artifact_repo import HttpArtifactRepository
    from requests.exceptions import HTTPError

    from accounts.models import RegisteredModelGrant
    from accounts.services import api_token_create
    from registry.models import RegisteredModel

    model, folder, features = trained
    area = f"{client_env.url}/api/2.0/mlflow-artifacts/artifacts/uploads/alice/fraud-v2"
    HttpArtifactRepository(area).log_artifacts(str(folder))
    client = _client()
    client.create_registered_model("fraud-up")
    s3 = moto_server.client()
    staged = _stored(s3, "models-store/uploads/")
    assert staged == {f"alice/fraud-v2/{path}": sha for path, sha in _files(folder).items()}
    bob = django_user_model.objects.create_user(username="bob", password="bob-password-1")
    RegisteredModelGrant.objects.create(
        registered_model=RegisteredModel.objects.get(name="fraud-up"), user=bob, level="CAN_EDIT"
    )
    alice_token = os.environ["MLFLOW_TRACKING_TOKEN"]
    monkeypatch.setenv(
        "MLFLOW_TRACKING_TOKEN", api_token_create(actor=None, user=bob, name="bob").secret
    )
    evil = tmp_path / "evil"
    evil.mkdir()
    (evil / "MLmodel").write_text("flavors: {python_function: {loader_module: os}}\n")

    attempts = {
        "overwrite": lambda: HttpArtifactRepository(area).log_artifact(str(evil / "MLmodel")),
        "list": lambda: HttpArtifactRepository(area).list_artifacts(),
        "delete": lambda: HttpArtifactRepository(area).delete_artifacts(),
    }
    for what, attempt in attempts.items():
        with pytest.raises(HTTPError) as excinfo:
            attempt()
        assert excinfo.value.response.status_code == 403, what
        assert excinfo.value.response.json()["error_code"] == "PERMISSION_DENIED", what
    with pytest.raises(MlflowException) as excinfo:
        _client().create_model_version("fraud-up", "mlflow-artifacts:/uploads/alice/fraud-v2")
    assert excinfo.value.error_code == "PERMISSION_DENIED"
    assert "only in their own area" in excinfo.value.message
    assert "yours is uploads/bob/" in excinfo.value.message

    assert _stored(s3, "models-store/uploads/") == staged
    assert _client().search_model_versions("name = 'fraud-up'") == []
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", alice_token)
    _client().create_model_version("fraud-up", "mlflow-artifacts:/uploads/alice/fraud-v2")
    manifest = _api_get(
        client_env, "/api/2.0/registry/model-versions/manifest?name=fraud-up&version=1"
    )
    assert manifest["status"] == "READY"
    assert {f["path"]: f["sha256"] for f in manifest["manifest"]["files"]} == _files(folder)
    loaded = mlflow.pyfunc.load_model("models:/fraud-up/1")
    np.testing.assert_array_equal(loaded.predict(features), model.predict(features))


def test_missing_source_ends_in_failed_registration_naming_it(client_env):
    client = _client()
    client.create_registered_model("broken")
    source = f"s3://{SOURCE_BUCKET}/runs/missing/model"

    with pytest.raises(MlflowException) as excinfo:
        client.create_model_version("broken", source, await_creation_for=60)

    assert "FAILED_REGISTRATION" in str(excinfo.value)
    version = client.get_model_version("broken", "1")
    assert version.status == "FAILED_REGISTRATION"
    assert (
        version.status_message == f"Copy failed: Source {source} does not exist or holds no files."
    )
    with pytest.raises(MlflowException) as excinfo:
        client.transition_model_version_stage("broken", "1", "Production")
    assert "only READY versions move between stages" in str(excinfo.value)


def test_storage_down_at_first_attempt_then_back_within_the_retry_window(
    client_env, moto_server, trained
):
    """moto keeps its state in memory, so it cannot be stopped mid-copy and come back with
    its objects. Instead it is stopped before the version is created, so the worker's first
    attempt meets a dead endpoint (connection refused: transient); the test waits until the
    version records that failed attempt, starts moto again on the same port, puts the buckets
    and the source back, and the scheduled retry (1, 2, 4, ... s of backoff) completes it."""
    model, folder, features = trained
    client = _client()
    client.create_registered_model("flaky")
    moto_server.stop()

    client.create_model_version(
        "flaky", f"s3://{SOURCE_BUCKET}/runs/r2/model", await_creation_for=0
    )
    wait_for(
        lambda: client.get_model_version("flaky", "1").status_message.startswith(
            "Copy attempt 1 of 6 failed"
        ),
        60,
        "the first attempt to fail",
    )
    assert client.get_model_version("flaky", "1").status == "PENDING_REGISTRATION"
    # Hold the worker while the server comes back and is refilled, so that a retry cannot
    # list a half-uploaded source (that would be a partial source, not what is tested here).
    os.killpg(client_env.worker.pid, signal.SIGSTOP)
    try:
        moto_server.start()
        moto_server.reset()
        _upload_folder(moto_server.client(), folder, SOURCE_BUCKET, "runs/r2/model")
    finally:
        os.killpg(client_env.worker.pid, signal.SIGCONT)

    wait_for(
        lambda: client.get_model_version("flaky", "1").status != "PENDING_REGISTRATION",
        60,
        "the retry",
    )
    assert client.get_model_version("flaky", "1").status == "READY"
    loaded = mlflow.pyfunc.load_model("models:/flaky/1")
    np.testing.assert_array_equal(loaded.predict(features), model.predict(features))
