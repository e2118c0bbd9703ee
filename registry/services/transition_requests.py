"""Transition requests (the approval workflow): create, approve (the approvals that count
and, with enough of them, the move through the stage engine), reject, cancel, expire."""

from __future__ import annotations

import uuid
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
    Activity,
    ActivityType,
    ModelVersion,
    ModelVersionStatus,
    RegisteredModel,
    Stage,
    StagePolicy,
    TransitionRequest,
    TransitionRequestStatus,
)
from registry.selectors import stage_policy_effective
from registry.services import approvals
from registry.services.common import (
    COMMENT_MAX_LENGTH,
    actor_or_none,
    lock_model_version,
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
    return approvals.request_code(
        request_id, kind="transition request", listing="transition-requests/list"
    )


def _open_request(
    model_version: ModelVersion,
    stage: Stage,
    *,
    creator: str | None = None,
    request_code: uuid.UUID | None = None,
) -> TransitionRequest:
    """The open request to move ``model_version`` to ``stage`` (by ``creator``, if named; the
    one ``request_code`` names, if given: :func:`approvals.open_request_checked`)."""
    requests = model_version.transition_requests.filter(
        status=TransitionRequestStatus.OPEN, to_stage=stage
    )
    if creator is not None:
        requests = requests.filter(requested_by_username=creator)
    return approvals.open_request_checked(
        requests.first(),
        request_code,
        where=(
            f"to move version {model_version.version} of "
            f"'{model_version.registered_model.name}' to {stage}"
        ),
        by=f" by {creator}" if creator is not None else "",
    )


def _approvals_tally(
    *,
    request: TransitionRequest,
    registered_model: RegisteredModel,
    model_version: ModelVersion,
    policy: StagePolicy,
) -> approvals.Tally:
    """The approvals that count now (:func:`approvals.approvals_tally`): an approver must
    still hold the level of the move."""
    needed = permissions.transition_level(model_version.current_stage, request.to_stage)

    def no_longer_decides(approver: User) -> str | None:
        held = permissions.effective_level(approver, registered_model)
        return f"now holds {held.name}; the move needs {needed.name}" if held < needed else None

    return approvals.approvals_tally(
        request=request,
        model_version=model_version,
        policy=policy,
        no_longer_decides=no_longer_decides,
    )


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
    """A step in a request's life: its entry on the trail and, if any, its webhook event. The
    caller holds the model's row lock, taken in this transaction (docs/decisions/0021)."""
    activity = record_activity(
        actor=actor,
        model_version=model_version,
        activity_type=activity_type,
        from_stage=from_stage,
        to_stage=request.to_stage,
        comment=comment,
        request=request,
        at=at,
        model_locked=True,
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
            under_lock=True,
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
    (:func:`_approvals_tally`). Returns the APPROVED_REQUEST activity.
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
        approvals.approval_record(
            actor=actor,
            request=request,
            model_version=model_version,
            policy=policy,
            refusal=lambda rule: policy_refusal(policy, registered_model, rule),
            comment=comment,
            at=now,
        )
        tally = _approvals_tally(
            request=request,
            registered_model=registered_model,
            model_version=model_version,
            policy=policy,
        )
        if not tally.complete:
            return record_activity(
                actor=actor,
                model_version=model_version,
                activity_type=ActivityType.APPROVED_REQUEST,
                from_stage=model_version.current_stage,
                to_stage=target,
                comment=comment,
                system_comment=(
                    f"{tally.progress}: the request stays open until enough distinct approvers "
                    "agree." + tally.lapsed_note
                ),
                request=request,
                at=now,
                model_locked=True,
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
            under_lock=True,
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

    def expire(still_open: QuerySet[TransitionRequest], created_at: datetime) -> bool:
        request = still_open.select_related("model_version__registered_model").first()
        if request is None or not still_open.update(
            status=TransitionRequestStatus.EXPIRED, closed_at=now
        ):
            return False
        record_activity(
            actor=None,
            model_version=request.model_version,
            activity_type=ActivityType.CANCELLED_REQUEST,
            from_stage=request.from_stage,
            to_stage=request.to_stage,
            system_comment=(
                f"Expired: open since {created_at:%Y-%m-%d %H:%M} UTC, longer than the stage "
                "policy's request_ttl allows."
            ),
            request=request,
            at=now,
        )
        return True

    return approvals.requests_expire(
        TransitionRequest.objects.all(),
        model_name="model_version__registered_model__name",
        now=now,
        expire=expire,
    )
