"""Reads of the signed promotion records and of the public keys (docs/api.md, "Provenance")."""

from __future__ import annotations

import uuid
from typing import Any

from kernel.errors import RegistryError
from kernel.paging import paginate
from registry import validation
from registry.models import PromotionRecord, RegisteredModel
from registry.provenance.keys import PublicKey, keys
from registry.selectors.common import require_readable
from registry.selectors.registered_models import registered_model_get


def signing_public_keys() -> tuple[bool, tuple[PublicKey, ...]]:
    """Whether the registry signs, and the public keys to verify with (the current one first,
    then retired ones). Public keys are public: anyone may read them."""
    current = keys()
    return current.signing is not None, current.public


def promotion_records_of(
    *, actor: Any, name: Any, version: Any, max_results: Any = None, page_token: Any = None
) -> tuple[list[PromotionRecord], str]:
    """The records of one version of a model the actor may read, oldest first, paged. The
    version may have been deleted since: records outlive it."""
    registered_model = registered_model_get(actor=actor, name=name)
    number = validation.version_number(version)
    return paginate(
        PromotionRecord.objects.filter(
            registered_model_id=registered_model.pk, version=number
        ).order_by("id"),
        max_results=max_results,
        page_token=page_token,
        default=100,
        maximum=1000,
        keyset=["id"],
    )


def promotion_record_get(*, actor: Any, record_id: Any) -> PromotionRecord:
    """One record by its id, if the actor may read its model."""
    try:
        code = uuid.UUID(str(validation.require_string(record_id, "id")))
    except ValueError:
        raise RegistryError.invalid(f"'{record_id}' is not a promotion record id.") from None
    record = PromotionRecord.objects.filter(code=code).first()
    registered_model = (
        RegisteredModel.objects.filter(pk=record.registered_model_id).first() if record else None
    )
    if record is None or registered_model is None:
        raise RegistryError.not_found(f"No promotion record with id '{code}'.")
    require_readable(actor, registered_model)
    return record
