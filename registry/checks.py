"""Deployment checks of the registry (``manage.py check --deploy``)."""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Tags, register
from django.core.checks import Warning as CheckWarning

from registry.provenance.keys import keys


@register(Tags.security, deploy=True)
def check_signing_key(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Without a signing key the registry signs neither copies nor promotion records
    (docs/security.md, "Provenance"): a deployment then has only the registry's word."""
    if keys().signing is not None:
        return []
    return [
        CheckWarning(
            "REGISTRY_SIGNING_KEY is not set: managed copies and stage and alias moves are not "
            "signed, so a deployment cannot verify what it loads without trusting the "
            "registry's database.",
            hint="Set REGISTRY_SIGNING_KEY_FILE to an ECDSA P-256 private key in PEM, e.g. "
            "`openssl ecparam -name prime256v1 -genkey -noout | openssl pkcs8 -topk8 -nocrypt`.",
            id="registry.W002",
        )
    ]
