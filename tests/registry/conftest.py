"""Keys for the provenance tests: real ECDSA P-256 keys, made fresh for each test."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec


def private_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def public_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.fixture
def signing_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def signing(settings, signing_key):
    """The registry signs with ``signing_key``."""
    settings.PROVENANCE = {
        **settings.PROVENANCE,
        "SIGNING_KEY": private_pem(signing_key),
        "RETIRED_PUBLIC_KEYS": "",
        "IDENTITY": "https://registry.example.com",
    }
    return signing_key
