"""The registry's signing key and the public keys it serves (docs/decisions/0016-provenance.md).

The private key comes from ``REGISTRY_SIGNING_KEY`` (PEM) or ``REGISTRY_SIGNING_KEY_FILE`` (a
file holding it); public keys of retired keys from ``REGISTRY_SIGNING_RETIRED_PUBLIC_KEYS``
(``_FILE`` likewise), so that what they signed still verifies after a rotation. Parsed once per
settings object."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.core.exceptions import ImproperlyConfigured

from registry.provenance.conf import ProvenanceSettings, provenance_settings
from registry.provenance.dsse import key_id, load_public_keys

#: The curves model-signing's key-based signing accepts (and so the only ones the registry takes).
SUPPORTED_CURVES = ("secp256r1", "secp384r1", "secp521r1")


@dataclass(frozen=True)
class PublicKey:
    key_id: str
    pem: str
    current: bool


@dataclass(frozen=True)
class Keys:
    signing: ec.EllipticCurvePrivateKey | None
    public: tuple[PublicKey, ...]

    @property
    def current_key_id(self) -> str:
        return self.public[0].key_id if self.signing is not None else ""


def _pem(key: ec.EllipticCurvePublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


@lru_cache(maxsize=4)
def _parse(conf: ProvenanceSettings) -> Keys:
    signing = None
    public: list[PublicKey] = []
    if conf.signing_key.strip():
        try:
            key = serialization.load_pem_private_key(conf.signing_key.encode(), password=None)
        except (ValueError, TypeError) as exc:
            raise ImproperlyConfigured(
                f"REGISTRY_SIGNING_KEY is not an unencrypted PEM private key: {exc}"
            ) from None
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name not in (
            SUPPORTED_CURVES
        ):
            raise ImproperlyConfigured(
                "REGISTRY_SIGNING_KEY must be an ECDSA key on P-256, P-384 or P-521 (the keys "
                "OpenSSF model-signing verifies), e.g. `openssl ecparam -name prime256v1 "
                "-genkey -noout | openssl pkcs8 -topk8 -nocrypt`."
            )
        signing = key
        public.append(PublicKey(key_id(key.public_key()), _pem(key.public_key()), True))
    if conf.retired_public_keys.strip():
        try:
            retired = load_public_keys(conf.retired_public_keys.encode())
        except ValueError as exc:
            raise ImproperlyConfigured(
                f"REGISTRY_SIGNING_RETIRED_PUBLIC_KEYS: {exc} (concatenated PEM public keys)."
            ) from None
        known = {entry.key_id for entry in public}
        for old in retired:
            if key_id(old) not in known:
                known.add(key_id(old))
                public.append(PublicKey(key_id(old), _pem(old), False))
    return Keys(signing=signing, public=tuple(public))


def keys() -> Keys:
    return _parse(provenance_settings())
