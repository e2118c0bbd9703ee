"""Reads the web UI needs beyond the registry's own selectors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from accounts import permissions
from registry import selectors
from registry.models import StagePolicy, TransitionRequest, TransitionRequestStatus

# "Waiting for me" looks at this many open requests at most (oldest first), so the page costs
# a bounded number of queries however many requests are open.
WAITING_SCAN_LIMIT = 200

DECIDE_ACTIONS = {"APPROVE_TRANSITION_REQUEST", "REJECT_TRANSITION_REQUEST"}


@dataclass(frozen=True)
class RequestRow:
    request: TransitionRequest
    actions: list[str]


def transition_requests_waiting_for(*, actor: Any) -> list[RequestRow]:
    """The open requests, across the models the actor can read, that the actor may approve or
    reject (``request_available_actions``, the rule the API reports), oldest first."""
    if not permissions.is_signed_in(actor):
        return []
    candidates = (
        TransitionRequest.objects.filter(status=TransitionRequestStatus.OPEN)
        .filter(
            permissions.readable_models_q(actor, model_field="model_version__registered_model_id")
        )
        .select_related("model_version__registered_model")
        .prefetch_related("approvals")
        .order_by("created_at", "id")[:WAITING_SCAN_LIMIT]
    )
    rows = []
    # One level per model and one policy per (model, stage), however many requests they have.
    levels: dict[int, permissions.Level] = {}
    policies: dict[tuple[int, str], StagePolicy] = {}
    for request in candidates:
        registered_model = request.model_version.registered_model
        if registered_model.pk not in levels:
            levels[registered_model.pk] = permissions.effective_level(actor, registered_model)
        key = (registered_model.pk, request.to_stage)
        if key not in policies:
            policies[key] = selectors.stage_policy_effective(
                registered_model=registered_model, stage=request.to_stage
            )
        actions = selectors.request_available_actions(
            actor, request, level=levels[registered_model.pk], policy=policies[key]
        )
        if DECIDE_ACTIONS.intersection(actions):
            rows.append(RequestRow(request=request, actions=actions))
    return rows


def request_rows(*, actor: Any, requests: list[TransitionRequest]) -> list[RequestRow]:
    return [
        RequestRow(request=request, actions=selectors.request_available_actions(actor, request))
        for request in requests
    ]
