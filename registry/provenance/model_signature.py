"""The OpenSSF model-signing signature of a managed copy (docs/decisions/0016-provenance.md).

The copy already hashed every file with sha256 on its way into the store, and the manifest
lists them; model-signing's ``files`` serialization with sha256 hashes exactly those bytes the
same way. So the signature is built from the manifest, without reading the model again: the
in-toto Statement model-signing verifies (one resource per file, path and sha256) in a Sigstore
bundle whose DSSE envelope is signed with the registry's key. ``model_signing verify key``
hashes a downloaded copy itself and compares, so a signature built from a wrong manifest could
never verify.

The signature names its own file (``registry-model.sig``) among the paths to ignore, so it can
sit in the version's folder, be downloaded with the files, and not count among them; and the
file the ``mlflow`` client adds to every ``models:/`` download (``registered_model_meta``),
unless the model has a file of that name itself, so that a copy downloaded with the client
verifies as it is."""

from __future__ import annotations

import pathlib
from collections.abc import Iterable

from cryptography.hazmat.primitives.asymmetric import ec
from model_signing import manifest as ms_manifest
from model_signing._hashing.hashing import Digest
from model_signing._signing import sign_ec_key, sign_sigstore_pb
from model_signing._signing.signing import Payload

from registry.provenance import MLFLOW_CLIENT_META, SIGNATURE_NAME


class _KeySigner(sign_ec_key.Signer):
    """model-signing's elliptic-curve signer, given the key instead of a file to read it from
    (the key comes from the environment and is never written to disk)."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
        sign_ec_key._check_supported_ec_key(private_key.public_key())
        self._private_key = private_key


def signature_of(
    *, name: str, files: Iterable[tuple[str, str]], private_key: ec.EllipticCurvePrivateKey
) -> bytes:
    """The model-signing signature (a Sigstore bundle, JSON) of the files ``(path, sha256 hex)``
    of a model called ``name``."""
    files = list(files)
    ignored = [SIGNATURE_NAME]
    if MLFLOW_CLIENT_META not in {path for path, _sha256 in files}:
        ignored.append(MLFLOW_CLIENT_META)
    serialization = ms_manifest._FileSerialization(
        "sha256", allow_symlinks=False, ignore_paths=[pathlib.Path(name) for name in ignored]
    )
    items = [
        ms_manifest.FileManifestItem(
            path=pathlib.PurePosixPath(path), digest=Digest("sha256", bytes.fromhex(sha256))
        )
        for path, sha256 in files
    ]
    manifest = ms_manifest.Manifest(name, items, serialization)
    signature = _KeySigner(private_key).sign(Payload(manifest))
    assert isinstance(signature, sign_sigstore_pb.Signature)  # what the key signer returns
    return signature.bundle.to_json().encode("utf-8")
