"""Reads of transition requests, and what the caller may do with an open one."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from accounts import permissions
from accounts.permissions import Level
from registry.models import ModelVersion, StagePolicy, TransitionRequest, TransitionRequestStatus
from registry.selectors.policies import stage_policy_effective
from registry.selectors.versions import model_version_get


def transition_requests_open(*, actor: Any, name: Any, version: Any) -> list[TransitionRequest]:
    model_version = model_version_get(actor=actor, name=name, version=version)
    return list(
        model_version.transition_requests.filter(status=TransitionRequestStatus.OPEN)
        .select_related("model_version__registered_model")
        .prefetch_related("approvals")
        .order_by("created_at", "id")
    )


def request_available_actions(
    actor: Any,
    request: TransitionRequest,
    *,
    level: Level | None = None,
    policy: StagePolicy | None = None,
) -> list[str]:
    """What the caller may do with an open request: the Databricks ``available_actions``, by
    the rules the services refuse with (``accounts.permissions``).

    ``level`` (the actor's on the request's model) and ``policy`` (for its target stage) may
    be passed in when they are already known, so a list of requests costs no query per row.
    The policy is read only for someone who may decide the request.
    """
    actions: list[str] = []
    registered_model = request.model_version.registered_model
    if level is None:
        level = permissions.effective_level(actor, registered_model)
    if permissions.can_cancel_request(actor, request, level):
        actions.append("CANCEL_TRANSITION_REQUEST")
    if permissions.can_decide_request(request, level):
        if policy is None:
            policy = stage_policy_effective(
                registered_model=registered_model, stage=request.to_stage
            )
        if permissions.can_approve_request(actor, request, level, policy):
            actions.append("APPROVE_TRANSITION_REQUEST")
        actions.append("REJECT_TRANSITION_REQUEST")
    return actions


def transition_request_by_code(
    *, model_version: ModelVersion, code: Any
) -> TransitionRequest | None:
    """The version's request with this id, whatever its status; None if it has none (for the
    web UI: the actor's permission was checked by the selector that gave the version)."""
    try:
        parsed = uuid.UUID(str(code))
    except ValueError:
        return None
    return TransitionRequest.objects.filter(code=parsed, model_version=model_version).first()


def transition_requests_open_readable(*, actor: Any, limit: int) -> list[TransitionRequest]:
    """The oldest open requests, at most ``limit``, on the models the actor can read."""
    return list(
        TransitionRequest.objects.filter(status=TransitionRequestStatus.OPEN)
        .filter(
            permissions.readable_models_q(actor, model_field="model_version__registered_model_id")
        )
        .select_related("model_version__registered_model")
        .prefetch_related("approvals")
        .order_by("created_at", "id")[:limit]
    )


def transition_requests_closed_as_approved(*, ids: Iterable[int]) -> dict[int, datetime | None]:
    """Of these requests (by primary key), those approved, with the time they closed (the time
    of the approval that completed them): one query, none without ids."""
    ids = set(ids)
    if not ids:
        return {}
    return dict(
        TransitionRequest.objects.filter(
            pk__in=ids, status=TransitionRequestStatus.APPROVED
        ).values_list("pk", "closed_at")
    )


def transition_requests_by(*, actor: Any, limit: int) -> list[TransitionRequest]:
    """The requests the actor made, on the models they can still read, newest first, at most
    ``limit`` (whatever their status)."""
    if not permissions.is_signed_in(actor):
        return []
    return list(
        TransitionRequest.objects.filter(requested_by=actor)
        .filter(
            permissions.readable_models_q(actor, model_field="model_version__registered_model_id")
        )
        .select_related("model_version__registered_model")
        .prefetch_related("approvals")
        .order_by("-created_at", "-id")[:limit]
    )
