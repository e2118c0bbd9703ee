"""The signature of a managed copy on the local-folder store, in process: written beside the
files and not among them, verified by model-signing's own API on the store's folder, and
left out (and made anew) when a version is copied from another one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from registry import services
from registry.artifacts.services import model_version_artifacts_copy
from registry.models import ModelVersion, ModelVersionManifest
from registry.provenance import SIGNATURE_NAME
from registry.provenance.dsse import key_id
from tests.registry.conftest import public_pem

pytestmark = [pytest.mark.django_db, pytest.mark.real_artifact_copy]


def _verify(folder: Path, public_key: Path) -> None:
    import model_signing

    model_signing.verifying.Config().use_elliptic_key_verifier(public_key=public_key).verify(
        folder, folder / SIGNATURE_NAME
    )


def test_copies_are_signed_and_a_copy_of_a_copy_signs_its_own(user, store, signing, tmp_path):
    source = tmp_path / "sources" / "churn"
    (source / "sub").mkdir(parents=True)
    (source / "MLmodel").write_text("flavors: {}\n")
    (source / "sub" / "weights.bin").write_bytes(os.urandom(50_000))
    public_key = tmp_path / "registry.pem"
    public_key.write_text(public_pem(signing))
    services.registered_model_create(actor=user, name="churn")
    first = services.model_version_create(actor=user, name="churn", source=source.as_uri())
    model_version_artifacts_copy(model_version_id=first.pk)

    first.refresh_from_db()
    manifest = ModelVersionManifest.objects.get(model_version=first)
    assert manifest.signature_key_id == key_id(signing.public_key())
    assert SIGNATURE_NAME not in [item["path"] for item in manifest.files]
    folder = store / "models" / str(first.registered_model.code) / "1"
    assert (folder / SIGNATURE_NAME).is_file()
    _verify(folder, public_key)

    services.registered_model_create(actor=user, name="churn-prod")
    second = services.model_version_create(actor=user, name="churn-prod", source="models:/churn/1")
    model_version_artifacts_copy(model_version_id=second.pk)
    second.refresh_from_db()
    assert (second.status, second.artifact_digest) == ("READY", first.artifact_digest)
    copied = store / "models" / str(second.registered_model.code) / "1"
    assert sorted(p.name for p in copied.rglob("*") if p.is_file()) == sorted(
        ["MLmodel", "weights.bin", SIGNATURE_NAME]
    )
    _verify(copied, public_key)


def test_without_a_key_copies_are_not_signed(user, store, settings, tmp_path):
    settings.PROVENANCE = {**settings.PROVENANCE, "SIGNING_KEY": ""}
    source = tmp_path / "sources" / "m"
    source.mkdir(parents=True)
    (source / "MLmodel").write_text("flavors: {}\n")
    services.registered_model_create(actor=user, name="m")
    version = services.model_version_create(actor=user, name="m", source=source.as_uri())
    model_version_artifacts_copy(model_version_id=version.pk)
    assert ModelVersion.objects.get(pk=version.pk).status == "READY"
    assert ModelVersionManifest.objects.get(model_version=version).signature_key_id == ""
    assert not list(store.rglob(SIGNATURE_NAME))
