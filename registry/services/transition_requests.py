"""Transition requests (the approval workflow): create, approve (the approvals that count
and, with enough of them, the move through the stage engine), reject, cancel, expire."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts import permissions
from accounts.models import User
from accounts.permissions import Level
from kernel.errors import RegistryError
from registry import validation
from registry.models import (
    Activity,
    ActivityType,
    ModelVersion,
    ModelVersionStatus,
    RegisteredModel,
    Stage,
    StagePolicy,
    TransitionApproval,
    TransitionRequest,
    TransitionRequestStatus,
)
from registry.selectors import stage_policy_effective
from registry.services.common import (
    COMMENT_MAX_LENGTH,
    actor_or_none,
    lock_model_version,
    lock_registered_model,
    record_activity,
)
from registry.services.stages import (
    apply_stage_change,
    check_archive_target,
    check_required_tags,
    policy_refusal,
)
from webhooks.models import EventType
from webhooks.services.outbox import webhook_event_emit


def _request_code(request_id: Any) -> uuid.UUID | None:
    """The optional ``request_id`` of a decision: the ``id`` transition-requests/list gives."""
    if request_id is None or request_id == "":
        return None
    try:
        return uuid.UUID(str(request_id))
    except ValueError:
        raise RegistryError.invalid(
            f"Parameter 'request_id' must be the id of a transition request, as "
            f"transition-requests/list returns it; got '{str(request_id)[:80]}'."
        ) from None


def _open_request(
    model_version: ModelVersion,
    stage: Stage,
    *,
    creator: str | None = None,
    request_code: uuid.UUID | None = None,
) -> TransitionRequest:
    """The open request to move ``model_version`` to ``stage`` (by ``creator``, if named).

    Model, version and stage name a request as Databricks' API does, so between reading a
    request and deciding it, a rename (another model now holding the name) or a request
    decided and made again could put another request behind the same names. With
    ``request_code`` (the id the decider read) the decision applies to that request or to none.
    """
    requests = model_version.transition_requests.filter(
        status=TransitionRequestStatus.OPEN, to_stage=stage
    )
    if creator is not None:
        requests = requests.filter(requested_by_username=creator)
    request = requests.first()
    where = (
        f"to move version {model_version.version} of '{model_version.registered_model.name}' "
        f"to {stage}"
    )
    if request is None:
        by = f" by {creator}" if creator is not None else ""
        raise RegistryError.not_found(f"No open request{by} {where}.")
    if request_code is not None and request.code != request_code:
        raise RegistryError.invalid(
            f"Request {request_code} is not the open request {where}: the model may have been "
            "renamed, or the request decided and another one made, since it was read. List the "
            "requests again and decide the one you mean."
        )
    return request


def _approvals_that_count(
    *,
    request: TransitionRequest,
    registered_model: RegisteredModel,
    from_stage: str,
    policy: StagePolicy,
) -> tuple[list[str], list[str]]:
    """The approvers whose approval counts now, and each other one with the reason it does not.

    Checked when the move would apply, not only when each approval was given: an approver who
    no longer holds the level of the move (a grant revoked or lowered, the account deactivated
    or deleted), or a requester's own approval once the policy forbids self-approval, no longer
    counts towards ``required_approvals``.
    """
    needed = permissions.transition_level(from_stage, request.to_stage)
    counted: list[str] = []
    lapsed: list[str] = []
    digest = request.model_version.artifact_digest
    for approval in request.approvals.select_related("approver").order_by("created_at", "id"):
        name = approval.approver_username
        if approval.artifact_digest != digest:  # given for other bytes (docs/decisions/0015)
            lapsed.append(f"{name} (given for {approval.artifact_digest or 'no digest'})")
        elif not name:  # the registry itself
            counted.append(name)
        elif approval.approver is None:
            lapsed.append(f"{name} (the account was deleted)")
        elif permissions.self_approval_refused(name, request, policy):
            lapsed.append(f"{name} (the requester, and allow_self_approval is off)")
        elif (held := permissions.effective_level(approval.approver, registered_model)) < needed:
            lapsed.append(f"{name} (now holds {held.name}; the move needs {needed.name})")
        else:
            counted.append(name)
    return counted, lapsed


def _request_step(
    *,
    actor: User | None,
    registered_model: RegisteredModel,
    model_version: ModelVersion,
    request: TransitionRequest,
    activity_type: ActivityType,
    event: EventType | None,
    from_stage: str,
    comment: str,
    at: Any,
) -> Activity:
    """A step in a request's life: its entry on the trail and, if any, its webhook event."""
    activity = record_activity(
        actor=actor,
        model_version=model_version,
        activity_type=activity_type,
        from_stage=from_stage,
        to_stage=request.to_stage,
        comment=comment,
        request=request,
        at=at,
    )
    if event is not None:
        webhook_event_emit(
            event=event,
            registered_model=registered_model,
            model_version=model_version,
            payload_data={
                "from_stage": from_stage,
                "to_stage": request.to_stage,
                "comment": comment,
            },
            actor=actor,
        )
    return activity


def transition_request_create(
    *, actor: User | None, name: Any, version: Any, stage: Any, comment: Any = None
) -> TransitionRequest:
    """Ask for a version to be moved to ``stage``. Anyone who can read the model may ask; at
    most one request per version and target stage is open at a time."""
    name = validation.require_string(name, "name")
    number = validation.version_number(version)
    target = validation.stage(stage)
    comment = validation.bounded_text(comment, "comment", COMMENT_MAX_LENGTH)
    try:
        with transaction.atomic():
            registered_model, model_version = lock_model_version(
                name, number, actor=actor, level=Level.CAN_READ, action="request transitions in"
            )
            now = timezone.now()  # after the lock: the trail's order is the lock's
            if model_version.status != ModelVersionStatus.READY:
                raise RegistryError.invalid(
                    f"Model version {number} of '{name}' is {model_version.status}: only READY "
                    "versions move between stages."
                )
            if model_version.current_stage == target:
                raise RegistryError.invalid(
                    f"Model version {number} of '{name}' is already in {target}."
                )
            policy = stage_policy_effective(registered_model=registered_model, stage=target)
            requester = actor_or_none(actor)
            request = TransitionRequest.objects.create(
                model_version=model_version,
                from_stage=model_version.current_stage,
                to_stage=target,
                requested_by=requester,
                requested_by_username=requester.get_username() if requester else "",
                comment=comment,
                created_at=now,
                expires_at=now + policy.request_ttl if policy.request_ttl else None,
            )
            _request_step(
                actor=actor,
                registered_model=registered_model,
                model_version=model_version,
                request=request,
                activity_type=ActivityType.REQUESTED_TRANSITION,
                event=EventType.TRANSITION_REQUEST_CREATED,
                from_stage=request.from_stage,
                comment=comment,
                at=now,
            )
    except IntegrityError:
        # The partial unique constraint decides between two requesters racing.
        raise RegistryError.already_exists(
            f"An open request to move version {number} of '{name}' to {target} already "
            "exists: approve, reject or cancel it first."
        ) from None
    return request


def _lock_to_decide(
    actor: User | None, name: str, number: int, target: Stage, request_code: uuid.UUID | None
) -> tuple[RegisteredModel, ModelVersion, TransitionRequest, Any]:
    """Under the model's row lock, the open request an approver or a rejecter decides, after
    the check that they hold the level of its move (which depends on the version's stage), and
    the time of the decision (taken after the lock: the trail's order is the lock's)."""
    registered_model, model_version = lock_model_version(
        name, number, actor=actor, level=None, action=""
    )
    now = timezone.now()
    permissions.require_can_transition(actor, registered_model, model_version.current_stage, target)
    request = _open_request(model_version, target, request_code=request_code)
    return registered_model, model_version, request, now


def transition_request_approve(
    *,
    actor: User | None,
    name: Any,
    version: Any,
    stage: Any,
    archive_existing_versions: Any = False,
    comment: Any = None,
    request_id: Any = None,
) -> Activity:
    """Approve the open request to move a version to ``stage`` (the one ``request_id`` names,
    if given: :func:`_open_request`).

    The approver needs the level of the move. Under the stage policy the request may need
    several distinct approvers and may forbid the requester approving their own; each approval
    is recorded, and the approval that completes the count applies the move in the same
    transaction. Only approvals that still count then are counted
    (:func:`_approvals_that_count`). Returns the APPROVED_REQUEST activity.
    """
    name = validation.require_string(name, "name")
    number = validation.version_number(version)
    target = validation.stage(stage)
    request_code = _request_code(request_id)
    archive = validation.boolean(archive_existing_versions, "archive_existing_versions")
    comment = validation.bounded_text(comment, "comment", COMMENT_MAX_LENGTH)
    check_archive_target(archive, target)
    with transaction.atomic():
        registered_model, model_version, request, now = _lock_to_decide(
            actor, name, number, target, request_code
        )
        policy = stage_policy_effective(registered_model=registered_model, stage=target)
        approver = actor_or_none(actor)
        approver_name = approver.get_username() if approver else ""
        if permissions.self_approval_refused(approver_name, request, policy):
            raise policy_refusal(
                policy,
                registered_model,
                "allow_self_approval is off: the requester may not approve their own request.",
            )
        if permissions.has_approved(actor, request):
            raise RegistryError.invalid(
                f"{approver_name} has already approved this request; it needs another approver."
            )
        TransitionApproval.objects.create(
            request=request,
            approver=approver,
            approver_username=approver_name,
            comment=comment,
            artifact_digest=model_version.artifact_digest,
            created_at=now,
        )
        counted, lapsed = _approvals_that_count(
            request=request,
            registered_model=registered_model,
            from_stage=model_version.current_stage,
            policy=policy,
        )
        if len(counted) < policy.required_approvals:
            no_longer = f" Approvals that no longer count: {'; '.join(lapsed)}." if lapsed else ""
            return record_activity(
                actor=actor,
                model_version=model_version,
                activity_type=ActivityType.APPROVED_REQUEST,
                from_stage=model_version.current_stage,
                to_stage=target,
                comment=comment,
                system_comment=(
                    f"Approval {len(counted)} of {policy.required_approvals}: the request stays "
                    "open until enough distinct approvers agree." + no_longer
                ),
                request=request,
                at=now,
            )
        check_required_tags(policy, registered_model, model_version)
        activity = apply_stage_change(
            actor=actor,
            registered_model=registered_model,
            model_version=model_version,
            target=target,
            archive_existing_versions=archive,
            activity_type=ActivityType.APPROVED_REQUEST,
            comment=comment,
            request=request,
            at=now,
        )
        TransitionRequest.objects.filter(pk=request.pk).update(
            status=TransitionRequestStatus.APPROVED, closed_at=now
        )
        webhook_event_emit(
            event=EventType.TRANSITION_REQUEST_APPROVED,
            registered_model=registered_model,
            model_version=model_version,
            payload_data={
                "from_stage": activity.from_stage,
                "to_stage": target,
                "comment": comment,
            },
            actor=actor,
        )
    return activity


def transition_request_reject(
    *,
    actor: User | None,
    name: Any,
    version: Any,
    stage: Any,
    comment: Any = None,
    request_id: Any = None,
) -> Activity:
    """Reject the open request (the one ``request_id`` names, if given): one rejection closes
    it, whatever approvals it had."""
    name = validation.require_string(name, "name")
    number = validation.version_number(version)
    target = validation.stage(stage)
    request_code = _request_code(request_id)
    comment = validation.bounded_text(comment, "comment", COMMENT_MAX_LENGTH)
    with transaction.atomic():
        registered_model, model_version, request, now = _lock_to_decide(
            actor, name, number, target, request_code
        )
        TransitionRequest.objects.filter(pk=request.pk).update(
            status=TransitionRequestStatus.REJECTED, closed_at=now
        )
        activity = _request_step(
            actor=actor,
            registered_model=registered_model,
            model_version=model_version,
            request=request,
            activity_type=ActivityType.REJECTED_REQUEST,
            event=EventType.TRANSITION_REQUEST_REJECTED,
            from_stage=model_version.current_stage,
            comment=comment,
            at=now,
        )
    return activity


def transition_request_cancel(
    *,
    actor: User | None,
    name: Any,
    version: Any,
    stage: Any,
    creator: Any,
    comment: Any = None,
    request_id: Any = None,
) -> Activity:
    """Cancel ``creator``'s open request (the one ``request_id`` names, if given); the
    requester or a CAN_MANAGE holder may."""
    name = validation.require_string(name, "name")
    number = validation.version_number(version)
    target = validation.stage(stage)
    creator = validation.require_string(creator, "creator")
    request_code = _request_code(request_id)
    comment = validation.bounded_text(comment, "comment", COMMENT_MAX_LENGTH)
    with transaction.atomic():
        registered_model, model_version = lock_model_version(
            name,
            number,
            actor=actor,
            level=permissions.request_cancel_level(actor, creator),
            action="cancel others' requests in",
        )
        now = timezone.now()  # after the lock: the trail's order is the lock's
        request = _open_request(model_version, target, creator=creator, request_code=request_code)
        TransitionRequest.objects.filter(pk=request.pk).update(
            status=TransitionRequestStatus.CANCELLED, closed_at=now
        )
        activity = _request_step(
            actor=actor,
            registered_model=registered_model,
            model_version=model_version,
            request=request,
            activity_type=ActivityType.CANCELLED_REQUEST,
            event=None,
            from_stage=request.from_stage,
            comment=comment,
            at=now,
        )
    return activity


def transition_requests_expire(*, now: Any = None) -> int:
    """Close the open requests whose policy's ``request_ttl`` has run out (Celery beat)."""
    now = now or timezone.now()
    expired = 0
    due = TransitionRequest.objects.filter(
        status=TransitionRequestStatus.OPEN, expires_at__lte=now
    ).values_list("pk", "model_version__registered_model__name")
    for pk, model_name in due:
        with transaction.atomic():
            lock_registered_model(model_name)
            # Decided since the list was read? The conditional update leaves it alone.
            if not TransitionRequest.objects.filter(
                pk=pk, status=TransitionRequestStatus.OPEN
            ).update(status=TransitionRequestStatus.EXPIRED, closed_at=now):
                continue
            request = TransitionRequest.objects.select_related(
                "model_version__registered_model"
            ).get(pk=pk)
            record_activity(
                actor=None,
                model_version=request.model_version,
                activity_type=ActivityType.CANCELLED_REQUEST,
                from_stage=request.from_stage,
                to_stage=request.to_stage,
                system_comment=(
                    f"Expired: open since {request.created_at:%Y-%m-%d %H:%M} UTC, longer than "
                    "the stage policy's request_ttl allows."
                ),
                request=request,
                at=now,
            )
            expired += 1
    return expired
