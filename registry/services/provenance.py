"""Signed promotion records (docs/decisions/0016-provenance.md): one per applied stage change
and per alias move that reaches a version with a digest, written in the transaction of the move
(so a move and its record commit or roll back together), by the history's writers
(``services.history``), the one path every stage change and alias move takes.

The record is an in-toto Statement v1 whose subject is the version (``models:/<name>/<n>``) with
the sha256 of its manifest (the version's ``artifact_digest``), and whose predicate says what
moved where, who asked, who approved with the digest each saw and when, the policy terms in
force, the time and the registry's identity; in a DSSE envelope signed with the registry's key.
Without a signing key (``REGISTRY_SIGNING_KEY``) nothing is written; a version without a digest
(reference mode) has no files the registry vouches for, and gets no record either."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from accounts import permissions
from accounts.models import User
from kernel import hashchain
from registry.models import (
    AliasRequest,
    ModelVersion,
    PointerKind,
    PromotionRecord,
    RegisteredModel,
    TransitionRequest,
)
from registry.provenance import dsse
from registry.provenance.conf import provenance_settings
from registry.provenance.keys import keys
from registry.selectors.aliases import alias_policy_effective, alias_policy_is_default
from registry.selectors.policies import stage_policy_effective
from registry.services.alias_policies import _terms as alias_policy_terms
from registry.services.policies import _policy_terms as stage_policy_terms

#: Where one record's envelope is served (``?id=<record id>``); webhook payloads link to it.
RECORD_PATH = "/api/2.0/registry/promotion-records/get"


def _time(value: datetime) -> str:
    return hashchain.timestamp(value)


def _request_part(
    kind: str, request_code: uuid.UUID | None
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    if request_code is None:
        return None, []
    request: TransitionRequest | AliasRequest | None
    if kind == PointerKind.STAGE:
        request = TransitionRequest.objects.filter(code=request_code).first()
    else:
        request = AliasRequest.objects.filter(code=request_code).first()
    if request is None:
        return {"id": str(request_code)}, []
    approvals = [
        {
            "approver": approval.approver_username,
            "approved_at": _time(approval.created_at),
            "artifact_digest": approval.artifact_digest,
            "comment": approval.comment,
        }
        for approval in request.approvals.order_by("created_at", "id")
    ]
    return {
        "id": str(request.code),
        "requested_by": request.requested_by_username,
        "requested_at": _time(request.created_at),
        "comment": request.comment,
    }, approvals


def _policy(registered_model: RegisteredModel, kind: str, pointer: str) -> dict[str, Any] | None:
    if kind == PointerKind.STAGE:
        policy = stage_policy_effective(registered_model=registered_model, stage=pointer)
        return stage_policy_terms(policy)
    alias_policy = alias_policy_effective(registered_model=registered_model, alias=pointer)
    if alias_policy_is_default(alias_policy):
        return None
    return alias_policy_terms(alias_policy)


def promotion_record_write(
    *,
    actor: User | None,
    registered_model: RegisteredModel,
    model_version: ModelVersion,
    kind: str,
    pointer: str,
    moved_from: str,
    cause: str,
    at: datetime,
    request_code: uuid.UUID | None = None,
    comment: str = "",
) -> PromotionRecord | None:
    """Sign and store the record of ``model_version`` reaching ``pointer`` (a stage, or an
    alias); None when signing is off or the version has no digest."""
    signing = keys()
    digest = model_version.artifact_digest
    if signing.signing is None or not digest.startswith("sha256:"):
        return None
    code = uuid.uuid4()
    request, approvals = _request_part(kind, request_code)
    moved = (
        {"from_stage": moved_from, "to_stage": pointer}
        if kind == PointerKind.STAGE
        else {
            "alias": pointer,
            "from_version": moved_from,
            "to_version": str(model_version.version),
        }
    )
    statement = {
        "_type": dsse.STATEMENT_TYPE,
        "subject": [
            {
                "name": f"models:/{registered_model.name}/{model_version.version}",
                "digest": {"sha256": digest.removeprefix("sha256:")},
            }
        ],
        "predicateType": dsse.PROMOTION_PREDICATE_TYPE,
        "predicate": {
            "registry": provenance_settings().identity,
            "record_id": str(code),
            "model": registered_model.name,
            "model_id": str(registered_model.code),
            "version": str(model_version.version),
            "artifact_digest": digest,
            "kind": kind,
            **moved,
            "cause": cause,
            "applied_by": permissions.acting_username(actor),
            "comment": comment,
            "request": request,
            "approvals": approvals,
            "policy": _policy(registered_model, kind, pointer),
            "time": _time(at),
        },
    }
    envelope = dsse.sign(statement, signing.signing)
    return PromotionRecord.objects.create(
        code=code,
        registered_model_id=registered_model.pk,
        model_name=registered_model.name,
        version=model_version.version,
        kind=kind,
        pointer=pointer,
        moved_from=moved_from,
        artifact_digest=digest,
        envelope=envelope.decode("utf-8"),
        envelope_digest=dsse.envelope_digest(envelope),
        key_id=signing.current_key_id,
        created_at=at,
    )


def promotion_record_link(record: PromotionRecord | None) -> dict[str, str] | None:
    """What a webhook payload carries of a record: where to fetch it and the digest to check
    it against."""
    if record is None:
        return None
    return {"url": f"{RECORD_PATH}?id={record.code}", "digest": record.envelope_digest}
