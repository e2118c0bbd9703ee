"""DSSE envelopes of in-toto Statements, signed and checked with ``cryptography`` alone.

DSSE (the Dead Simple Signing Envelope, v1.0): the signature is over the *pre-authentication
encoding* ``PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`` (lengths as
ASCII decimal of the byte counts), so neither the payload type nor the payload can be swapped
without breaking it; the envelope is ``{"payload": base64(body), "payloadType": type,
"signatures": [{"keyid", "sig": base64(signature)}]}``. The registry signs with ECDSA over the
curve of its key (P-256 with SHA-256, P-384 with SHA-384, P-521 with SHA-512: the keys
model-signing accepts), signatures DER-encoded as ``cryptography`` writes them.

No Django here: the verifier (``registry.provenance.verify``) runs on a deployment's side with
only this module, ``cryptography`` and a public key."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
#: The predicate type of the registry's promotion records (docs/decisions/0016-provenance.md).
PROMOTION_PREDICATE_TYPE = "https://model-registry.dev/promotion/v1"

_HASHES: dict[int, type[hashes.SHA256 | hashes.SHA384 | hashes.SHA512]] = {
    256: hashes.SHA256,
    384: hashes.SHA384,
    521: hashes.SHA512,
}


class VerificationError(Exception):
    """An envelope that does not verify, with what is wrong."""


def pae(payload_type: str, body: bytes) -> bytes:
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(body), body)


def key_id(public_key: ec.EllipticCurvePublicKey) -> str:
    """The id of a public key: the sha256 (hex) of its DER SubjectPublicKeyInfo."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def _algorithm(public_key: ec.EllipticCurvePublicKey) -> ec.ECDSA:
    size = public_key.curve.key_size
    if size not in _HASHES:
        raise ValueError(f"unsupported curve {public_key.curve.name}")
    return ec.ECDSA(_HASHES[size]())


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign(statement: dict[str, Any], private_key: ec.EllipticCurvePrivateKey) -> bytes:
    """The DSSE envelope (JSON bytes) of ``statement`` signed with ``private_key``."""
    body = canonical_json(statement)
    public_key = private_key.public_key()
    signature = private_key.sign(pae(PAYLOAD_TYPE, body), _algorithm(public_key))
    envelope = {
        "payload": base64.b64encode(body).decode("ascii"),
        "payloadType": PAYLOAD_TYPE,
        "signatures": [
            {"keyid": key_id(public_key), "sig": base64.b64encode(signature).decode("ascii")}
        ],
    }
    return canonical_json(envelope)


def load_public_keys(pem: bytes) -> list[ec.EllipticCurvePublicKey]:
    """Every public key of a PEM text (one or more ``PUBLIC KEY`` blocks)."""
    keys = []
    marker = b"-----END PUBLIC KEY-----"
    for block in pem.split(marker)[:-1]:
        start = block.find(b"-----BEGIN PUBLIC KEY-----")
        if start < 0:
            raise ValueError("a PEM block that is not a public key")
        key = serialization.load_pem_public_key(block[start:] + marker + b"\n")
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise ValueError("not an elliptic-curve public key")
        keys.append(key)
    if not keys:
        raise ValueError("no PEM public key found")
    return keys


def open_envelope(envelope: bytes, public_keys: list[ec.EllipticCurvePublicKey]) -> dict[str, Any]:
    """The statement of an envelope one of whose signatures verifies with one of
    ``public_keys``; :class:`VerificationError` otherwise."""
    try:
        parsed = json.loads(envelope)
        body = base64.b64decode(parsed["payload"], validate=True)
        payload_type = parsed["payloadType"]
        signatures = parsed["signatures"]
    except (ValueError, KeyError, TypeError) as exc:
        raise VerificationError(f"not a DSSE envelope: {exc}") from None
    if payload_type != PAYLOAD_TYPE:
        raise VerificationError(f"payloadType is {payload_type!r}, not {PAYLOAD_TYPE!r}")
    by_id = {key_id(key): key for key in public_keys}
    message = pae(payload_type, body)
    for entry in signatures if isinstance(signatures, list) else []:
        if not isinstance(entry, dict):
            continue
        keys = [by_id[entry["keyid"]]] if entry.get("keyid") in by_id else public_keys
        try:
            signature = base64.b64decode(entry["sig"], validate=True)
        except (ValueError, KeyError, TypeError):
            continue
        for key in keys:
            try:
                key.verify(signature, message, _algorithm(key))
            except (InvalidSignature, ValueError):
                continue
            statement = json.loads(body)
            if not isinstance(statement, dict) or statement.get("_type") != STATEMENT_TYPE:
                raise VerificationError("the payload is not an in-toto Statement v1")
            return statement
    raise VerificationError("no signature of the envelope verifies with the given public key(s)")


def envelope_digest(envelope: bytes) -> str:
    return "sha256:" + hashlib.sha256(envelope).hexdigest()
