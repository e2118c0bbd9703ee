"""Signed models end to end (docs/decisions/0016-provenance.md): a model saved with
``mlflow.sklearn``, registered through the registry (copied from the S3 server into the store by
the real worker), downloaded through the API with the ``mlflow`` client, verifies with the
unmodified ``model_signing`` command and Python API and the registry's public key, and fails after
one byte changes. Its promotion to Production verifies against the downloaded copy."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import urllib.request
import warnings
from pathlib import Path

import mlflow
import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from mlflow import MlflowClient

from registry.provenance import MLFLOW_CLIENT_META, SIGNATURE_NAME
from registry.provenance.dsse import key_id
from registry.provenance.verify import folder_digest
from tests.registry.artifacts.conftest import SOURCE_BUCKET
from tests.registry.conftest import private_pem

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.real_artifact_copy]


@pytest.fixture
def signing_key():
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def stack_env(signing_key):
    return {
        "REGISTRY_SIGNING_KEY": private_pem(signing_key),
        "REGISTRY_IDENTITY": "https://registry.test",
        "ARTIFACT_REGISTRATION_WAIT_SECONDS": "30",
    }


@pytest.fixture
def saved_model(tmp_path):
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(11)
    features = rng.normal(size=(100, 3))
    labels = (features[:, 0] > 0).astype(int)
    path = tmp_path / "saved-model"
    mlflow.sklearn.save_model(
        LogisticRegression().fit(features, labels), str(path), pip_requirements=["scikit-learn"]
    )
    return path


def _get(stack, path: str, token: str) -> bytes:
    request = urllib.request.Request(
        f"{stack.url}{path}", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return response.read()


def _model_signing_cli(folder: Path, public_key: Path) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603
        [
            sys.executable,
            "-m",
            "model_signing",
            "verify",
            "key",
            "--signature",
            str(folder / SIGNATURE_NAME),
            "--public_key",
            str(public_key),
            str(folder),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _flip_one_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def test_a_registered_copy_verifies_with_model_signing_and_fails_after_one_byte(
    client_env, moto_server, saved_model, signing_key, tmp_path
):
    import model_signing

    s3 = moto_server.client()
    for path in sorted(saved_model.rglob("*")):
        if path.is_file():
            relative = path.relative_to(saved_model).as_posix()
            s3.upload_file(str(path), SOURCE_BUCKET, f"runs/r7/model/{relative}")
    token = os.environ["MLFLOW_TRACKING_TOKEN"]
    warnings.simplefilter("ignore", FutureWarning)
    client = MlflowClient()
    client.create_registered_model("churn")
    client.create_model_version("churn", f"s3://{SOURCE_BUCKET}/runs/r7/model")
    assert client.get_model_version("churn", "1").status == "READY"

    # The public key, from the documented endpoint (no sign-in needed), is the registry's.
    keys = json.loads(
        urllib.request.urlopen(f"{client_env.url}/api/2.0/registry/signing-keys").read()
    )  # noqa: S310
    (served,) = keys["keys"]
    assert served["key_id"] == key_id(signing_key.public_key())
    public_key = tmp_path / "registry.pem"
    public_key.write_text(served["public_key"])
    manifest = json.loads(
        _get(client_env, "/api/2.0/registry/model-versions/manifest?name=churn&version=1", token)
    )["manifest"]
    assert manifest["signature"] == {"path": SIGNATURE_NAME, "key_id": served["key_id"]}
    assert SIGNATURE_NAME not in [item["path"] for item in manifest["files"]]

    # The mlflow client downloads the files and the signature beside them.
    copy = Path(
        mlflow.artifacts.download_artifacts("models:/churn/1", dst_path=str(tmp_path / "a"))
    )
    assert (copy / SIGNATURE_NAME).is_file()
    assert {p.relative_to(copy).as_posix() for p in copy.rglob("*") if p.is_file()} == {
        item["path"] for item in manifest["files"]
    } | {SIGNATURE_NAME, MLFLOW_CLIENT_META}  # the mlflow client adds its own meta file
    # The registry's digest is over the files, not the signature (nor the client's file).
    assert folder_digest(copy, leave_out=MLFLOW_CLIENT_META) == manifest["digest"]

    result = _model_signing_cli(copy, public_key)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Verification succeeded" in result.stdout
    model_signing.verifying.Config().use_elliptic_key_verifier(public_key=public_key).verify(
        copy, copy / SIGNATURE_NAME
    )

    # Promoted: the signed record's subject is this copy's digest.
    client.transition_model_version_stage("churn", "1", "Production")
    (record,) = json.loads(
        _get(
            client_env,
            "/api/2.0/registry/model-versions/promotion-records?name=churn&version=1",
            token,
        )
    )["records"]
    envelope = tmp_path / "record.json"
    envelope.write_bytes(_get(client_env, record["url"], token))
    assert (
        "sha256:" + hashlib.sha256(envelope.read_bytes()).hexdigest() == record["envelope_digest"]
    )

    def registry_verifier(folder: Path) -> subprocess.CompletedProcess:
        return subprocess.run(  # noqa: S603
            [
                sys.executable,
                "-m",
                "registry.provenance.verify",
                str(envelope),
                "--public-key",
                str(public_key),
                "--model-dir",
                str(folder),
                "--expect-to",
                "Production",
            ],
            cwd=Path(__file__).resolve().parents[3],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    verified = registry_verifier(copy)
    assert verified.returncode == 0, verified.stderr
    assert "registry:  https://registry.test" in verified.stdout

    # One byte changed in one file: both verifications fail.
    weights = max(
        (p for p in copy.rglob("*") if p.is_file() and p.name != SIGNATURE_NAME),
        key=lambda p: p.stat().st_size,
    )
    _flip_one_byte(weights)
    failed = _model_signing_cli(copy, public_key)
    assert failed.returncode != 0
    assert "Verification failed" in failed.stdout + failed.stderr
    assert weights.name in failed.stdout + failed.stderr
    with pytest.raises(ValueError, match="Signature mismatch"):
        model_signing.verifying.Config().use_elliptic_key_verifier(public_key=public_key).verify(
            copy, copy / SIGNATURE_NAME
        )
    rejected = registry_verifier(copy)
    assert rejected.returncode == 1
    assert "not sha256:" in rejected.stderr
