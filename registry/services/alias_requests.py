"""Alias requests: ask for an alias to be pointed at a version, approve (the approvals that
count and, with enough of them, the move through ``aliases.apply_alias_move``), reject,
cancel, expire; and the rollback of an alias, directly or as a request
(docs/decisions/0015-governed-aliases.md). Every step runs under the model's row lock, so
alias moves serialise with each other and with stage changes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts import permissions
from accounts.models import User
from accounts.permissions import Level
from kernel.errors import RegistryError
from registry import validation
from registry.models import (
    AliasPolicy,
    AliasRequest,
    ModelVersion,
    ModelVersionStatus,
    PointerCause,
    PointerMove,
    RegisteredModel,
    RegisteredModelAlias,
    TransitionRequestStatus,
)
from registry.selectors.aliases import (
    alias_last_move,
    alias_policy_effective,
    model_version_for_alias_target,
)
from registry.services import approvals
from registry.services.aliases import (
    alias_policy_refusal,
    apply_alias_move,
    check_alias_target,
)
from registry.services.common import (
    COMMENT_MAX_LENGTH,
    actor_or_none,
    lock_model_version,
    lock_registered_model,
)
from webhooks.models import EventType
from webhooks.services.outbox import webhook_event_emit


def _current_version(registered_model: RegisteredModel, alias: str) -> int | None:
    row = (
        RegisteredModelAlias.objects.filter(registered_model=registered_model, alias=alias)
        .select_related("model_version")
        .first()
    )
    return row.model_version.version if row is not None else None


def _emit(
    event: EventType,
    *,
    actor: User | None,
    request: AliasRequest,
    registered_model: RegisteredModel,
    model_version: ModelVersion,
    comment: str,
) -> None:
    webhook_event_emit(
        event=event,
        registered_model=registered_model,
        model_version=model_version,
        payload_data={
            "alias": request.alias,
            "from_version": str(request.from_version) if request.from_version else "",
            "to_version": str(model_version.version),
            "comment": comment,
            "request_id": str(request.code),
        },
        actor=actor,
        under_lock=True,  # every caller holds the model's row lock (docs/decisions/0021)
    )


def _create(
    *,
    actor: User | None,
    registered_model: RegisteredModel,
    model_version: ModelVersion,
    alias: str,
    comment: str,
    rollback: bool,
    now: datetime,
) -> AliasRequest:
    """Make the request, under the model's lock (held by the caller)."""
    name, number = registered_model.name, model_version.version
    if model_version.status != ModelVersionStatus.READY:
        raise RegistryError.invalid(
            f"Model version {number} of '{name}' is {model_version.status}: only READY "
            "versions can be named by a governed alias."
        )
    from_version = _current_version(registered_model, alias)
    if from_version == number:
        raise RegistryError.invalid(f"Alias '{alias}' of '{name}' already names version {number}.")
    policy = alias_policy_effective(registered_model=registered_model, alias=alias)
    requester = actor_or_none(actor)
    try:
        with transaction.atomic():
            request = AliasRequest.objects.create(
                registered_model=registered_model,
                alias=alias,
                model_version=model_version,
                from_version=from_version,
                rollback=rollback,
                artifact_digest=model_version.artifact_digest,
                requested_by=requester,
                requested_by_username=requester.get_username() if requester else "",
                comment=comment,
                created_at=now,
                expires_at=now + policy.request_ttl if policy.request_ttl else None,
            )
    except IntegrityError:
        # The partial unique constraint decides between two requesters racing.
        raise RegistryError.already_exists(
            f"An open request to point alias '{alias}' of '{name}' at version {number} already "
            "exists: approve, reject or cancel it first."
        ) from None
    _emit(
        EventType.ALIAS_REQUEST_CREATED,
        actor=actor,
        request=request,
        registered_model=registered_model,
        model_version=model_version,
        comment=comment,
    )
    return request


def alias_request_create(
    *, actor: User | None, name: Any, alias: Any, version: Any, comment: Any = None
) -> AliasRequest:
    """Ask for ``alias`` to name ``version``. Anyone who can read the model may ask; at most one
    request per alias and version is open at a time."""
    name = validation.require_string(name, "name")
    alias = validation.alias_name(alias, for_set=True)
    number = validation.version_number(version)
    comment = validation.bounded_text(comment, "comment", COMMENT_MAX_LENGTH)
    with transaction.atomic():
        registered_model, model_version = lock_model_version(
            name, number, actor=actor, level=Level.CAN_READ, action="request alias moves in"
        )
        return _create(
            actor=actor,
            registered_model=registered_model,
            model_version=model_version,
            alias=alias,
            comment=comment,
            rollback=False,
            now=timezone.now(),
        )


def _open_request(model_version: ModelVersion, alias: str, code: uuid.UUID | None) -> AliasRequest:
    request = approvals.open_request_checked(
        AliasRequest.objects.filter(
            model_version=model_version, alias=alias, status=TransitionRequestStatus.OPEN
        ).first(),
        code,
        where=(
            f"to point alias '{alias}' of '{model_version.registered_model.name}' at version "
            f"{model_version.version}"
        ),
    )
    request.registered_model = model_version.registered_model
    request.model_version = model_version
    return request


def _request_code(request_id: Any) -> uuid.UUID | None:
    return approvals.request_code(request_id, kind="alias request", listing="alias-requests/list")


def _lock_to_decide(
    actor: User | None, name: Any, alias: Any, version: Any, request_id: Any
) -> tuple[RegisteredModel, ModelVersion, AliasRequest, AliasPolicy, datetime]:
    """Under the model's row lock: the open request, the policy in force, after the check that
    the actor may decide it, and the time of the decision (taken after the lock)."""
    name = validation.require_string(name, "name")
    alias = validation.alias_name(alias, for_set=True)
    number = validation.version_number(version)
    code = _request_code(request_id)
    # Who may decide depends on the alias policy: checked just below, before the request is
    # looked up, so a refusal tells nothing about requests.
    registered_model, model_version = lock_model_version(
        name, number, actor=actor, level=None, action=""
    )
    now = timezone.now()
    policy = alias_policy_effective(registered_model=registered_model, alias=alias)
    permissions.require_can_decide_alias_request(
        actor, registered_model, alias, policy, permissions.group_names(actor)
    )
    request = _open_request(model_version, alias, code)
    return registered_model, model_version, request, policy, now


def _approvals_tally(
    *, request: AliasRequest, model_version: ModelVersion, policy: AliasPolicy
) -> approvals.Tally:
    """The approvals that count now (:func:`approvals.approvals_tally`): an approver must still
    be one who may decide the request under the alias policy."""
    registered_model = request.registered_model

    def no_longer_decides(approver: User) -> str | None:
        may = permissions.can_decide_alias_request(
            approver,
            policy,
            permissions.effective_level(approver, registered_model),
            permissions.group_names(approver),
        )
        return None if may else "may no longer decide this request"

    return approvals.approvals_tally(
        request=request,
        model_version=model_version,
        policy=policy,
        no_longer_decides=no_longer_decides,
    )


@dataclass(frozen=True)
class AliasDecision:
    """What an approval did: the request (its status says whether the move applied), and, when
    it did, the history entry of the move; ``note`` says how many approvals count."""

    request: AliasRequest
    move: PointerMove | None
    note: str


def alias_request_approve(
    *,
    actor: User | None,
    name: Any,
    alias: Any,
    version: Any,
    comment: Any = None,
    request_id: Any = None,
) -> AliasDecision:
    """Approve the open request to point ``alias`` at ``version`` (the one ``request_id``
    names, if given). Each approval is recorded with the version's artifact digest; the one
    that completes ``required_approvals`` (counting only those that still count) moves the
    alias in the same transaction, if the policy's stages and tags allow it then."""
    comment = validation.bounded_text(comment, "comment", COMMENT_MAX_LENGTH)
    with transaction.atomic():
        registered_model, model_version, request, policy, now = _lock_to_decide(
            actor, name, alias, version, request_id
        )
        approvals.approval_record(
            actor=actor,
            request=request,
            model_version=model_version,
            policy=policy,
            refusal=lambda rule: alias_policy_refusal(policy, registered_model, rule),
            comment=comment,
            at=now,
        )
        tally = _approvals_tally(request=request, model_version=model_version, policy=policy)
        note = f"{tally.progress}.{tally.lapsed_note}"
        if not tally.complete:
            return AliasDecision(request=request, move=None, note=note)
        check_alias_target(
            policy=policy, registered_model=registered_model, model_version=model_version
        )
        move = apply_alias_move(
            actor=actor,
            registered_model=registered_model,
            alias=request.alias,
            model_version=model_version,
            cause=PointerCause.APPROVED_REQUEST,
            at=now,
            request=request,
            comment=comment or request.comment,
        )
        _close(request, TransitionRequestStatus.APPROVED, actor=actor, comment=comment, at=now)
        _emit(
            EventType.ALIAS_REQUEST_APPROVED,
            actor=actor,
            request=request,
            registered_model=registered_model,
            model_version=model_version,
            comment=comment,
        )
    return AliasDecision(request=request, move=move, note=note)


def _close(
    request: AliasRequest, status: str, *, actor: User | None, comment: str, at: datetime
) -> None:
    """Close the request (under the model's lock, held by the caller). Saved, not updated in
    bulk, so receivers of post_save hear of the decision (the requester's email)."""
    request.status = status
    request.closed_at = at
    request.closed_by_username = permissions.acting_username(actor)
    request.closing_comment = comment
    request.save(update_fields=["status", "closed_at", "closed_by_username", "closing_comment"])


def alias_request_reject(
    *,
    actor: User | None,
    name: Any,
    alias: Any,
    version: Any,
    comment: Any = None,
    request_id: Any = None,
) -> AliasRequest:
    """Reject the open request: one rejection closes it, whatever approvals it had."""
    comment = validation.bounded_text(comment, "comment", COMMENT_MAX_LENGTH)
    with transaction.atomic():
        registered_model, model_version, request, _, now = _lock_to_decide(
            actor, name, alias, version, request_id
        )
        _close(request, TransitionRequestStatus.REJECTED, actor=actor, comment=comment, at=now)
        _emit(
            EventType.ALIAS_REQUEST_REJECTED,
            actor=actor,
            request=request,
            registered_model=registered_model,
            model_version=model_version,
            comment=comment,
        )
    return request


def alias_request_cancel(
    *,
    actor: User | None,
    name: Any,
    alias: Any,
    version: Any,
    comment: Any = None,
    request_id: Any = None,
) -> AliasRequest:
    """Cancel the open request: its requester or a CAN_MANAGE holder may."""
    name = validation.require_string(name, "name")
    alias = validation.alias_name(alias, for_set=True)
    number = validation.version_number(version)
    code = _request_code(request_id)
    comment = validation.bounded_text(comment, "comment", COMMENT_MAX_LENGTH)
    with transaction.atomic():
        registered_model, model_version = lock_model_version(
            name, number, actor=actor, level=None, action=""
        )
        now = timezone.now()
        if permissions.effective_level(actor, registered_model) < Level.CAN_READ:
            # Not even the requester's path is open: refused before any request is looked up.
            permissions.require_level(
                actor, registered_model, Level.CAN_MANAGE, action="cancel others' alias requests in"
            )
        request = _open_request(model_version, alias, code)
        permissions.require_level(
            actor,
            registered_model,
            permissions.request_cancel_level(actor, request.requested_by_username),
            action="cancel others' alias requests in",
        )
        _close(request, TransitionRequestStatus.CANCELLED, actor=actor, comment=comment, at=now)
    return request


def alias_requests_expire(*, now: datetime | None = None) -> int:
    """Close the open alias requests whose policy's ``request_ttl`` has run out (Celery beat,
    with the transition requests)."""
    moment = now or timezone.now()

    def expire(still_open: QuerySet[AliasRequest], created_at: datetime) -> bool:
        return bool(
            still_open.update(
                status=TransitionRequestStatus.EXPIRED,
                closed_at=moment,
                closing_comment=(
                    f"Expired: open since {created_at:%Y-%m-%d %H:%M} UTC, longer than the "
                    "alias policy's request_ttl allows."
                ),
            )
        )

    return approvals.requests_expire(
        AliasRequest.objects.all(), model_name="registered_model__name", now=moment, expire=expire
    )


@dataclass(frozen=True)
class AliasRollback:
    """A rollback made the move (``move``) or, for a protected alias the caller may not move
    directly, a request (``request``)."""

    alias: str
    to_version: int
    move: PointerMove | None = None
    request: AliasRequest | None = None


def registered_model_alias_rollback(
    *, actor: User | None, name: Any, alias: Any, comment: Any = None
) -> AliasRollback:
    """Point ``alias`` back at the version it named before its last move, under the same
    policy: directly when the caller may move it directly, else, for a protected alias, as a
    request (anyone who can read the model may make one). An alias deleted last is restored."""
    name = validation.require_string(name, "name")
    alias = validation.alias_name(alias, for_set=True)
    comment = validation.bounded_text(comment, "comment", COMMENT_MAX_LENGTH)
    with transaction.atomic():
        registered_model = lock_registered_model(name)
        now = timezone.now()
        policy = alias_policy_effective(registered_model=registered_model, alias=alias)
        level = permissions.effective_level(actor, registered_model)
        directly = permissions.may_move_alias_directly(
            actor, policy, level, permissions.group_names(actor)
        )
        if directly:
            pass
        elif any(part.protected for part in permissions.alias_policy_parts(policy)):
            # A protected alias the caller may not move: a request, which readers may make.
            permissions.require_level(
                actor, registered_model, Level.CAN_READ, action="request alias moves in"
            )
        else:
            # An unprotected alias is moved directly or not at all: CAN_EDIT is missing.
            permissions.require_level(
                actor, registered_model, Level.CAN_EDIT, action="edit the aliases of"
            )
        last = alias_last_move(registered_model=registered_model, alias=alias)
        if last is None or last.from_version is None:
            raise RegistryError.invalid(
                f"Alias '{alias}' of '{name}' named no other version before its last move: "
                "there is nothing to roll back to."
            )
        target = model_version_for_alias_target(
            registered_model=registered_model, number=last.from_version
        )
        if target is None:
            raise RegistryError.invalid(
                f"Alias '{alias}' of '{name}' named version {last.from_version} before, which "
                "has been deleted: point it at another version instead."
            )
        if directly:
            check_alias_target(
                policy=policy, registered_model=registered_model, model_version=target
            )
            move = apply_alias_move(
                actor=actor,
                registered_model=registered_model,
                alias=alias,
                model_version=target,
                cause=PointerCause.ROLLBACK,
                at=now,
                comment=comment,
            )
            return AliasRollback(alias=alias, to_version=target.version, move=move)
        request = _create(
            actor=actor,
            registered_model=registered_model,
            model_version=target,
            alias=alias,
            comment=comment,
            rollback=True,
            now=now,
        )
        return AliasRollback(alias=alias, to_version=target.version, request=request)
