"""Provenance (docs/decisions/0016-provenance.md): the registry's signing keys, the OpenSSF
model signature of each managed copy, and the signed promotion records (in-toto Statements in
DSSE envelopes), with a verifier a deployment runs with only a public key
(``python -m registry.provenance.verify``).

- ``conf``: the ``PROVENANCE`` settings.
- ``keys``: the signing key and the public keys kept for rotation.
- ``dsse``: DSSE envelopes and in-toto Statements, with nothing but ``cryptography``.
- ``model_signature``: the model-signing signature of a manifest.
- ``verify``: the verifier (a command, and functions).

``dsse`` and ``verify`` import no Django, so the verifier runs outside the service."""

#: The model-signing signature's name in a version's folder and in a downloaded copy.
SIGNATURE_NAME = "registry-model.sig"

#: The file the ``mlflow`` client writes into every ``models:/`` download (the model's name and
#: version). Not one of the registry's files: the model signature leaves it out unless the model
#: itself has one, and the verifier accepts a copy with or without it (docs/security.md).
MLFLOW_CLIENT_META = "registered_model_meta"
