"""Where an open request stands against the policy in force, in the terms the services decide
by, so a page can say what the promotion needs before anyone approves (docs/ui.md, "Open
requests").

The services refuse by these terms when an approval is given (who may approve) and when the
approval that completes the count applies the move (the tags the version must carry, for an
alias also its stage). This reads the same policy in force (``stage_policies_effective``,
``alias_policies_effective_many``) and the same rule functions (``accounts.permissions``); it
decides nothing, and the service checks again when someone approves.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from accounts import permissions
from accounts.models import PermissionLevel
from registry.models import (
    AliasPolicy,
    AliasRequest,
    ModelVersion,
    ModelVersionTag,
    StagePolicy,
    TransitionRequest,
)


@dataclass(frozen=True)
class TagNeed:
    """A tag the policy requires on the version, and the value it has now (None: no such tag)."""

    key: str
    value: str
    now: str | None

    @property
    def met(self) -> bool:
        return self.now == self.value


@dataclass(frozen=True)
class Readiness:
    """An open request against its policy: the approvals that count now of those required,
    whether the requester may approve, the tags (and, for an alias, the stages) the move needs
    when it applies, and what the viewer may do and why not."""

    required: int
    counted: list[str]
    lapsed: list[str]
    self_approval_allowed: bool
    tags: list[TagNeed]
    allowed_stages: list[str]
    stage: str
    expires_at: datetime | None
    # Why the viewer may not approve ("" if they may); set by :func:`for_viewer`.
    viewer_note: str = ""
    viewer_may_approve: bool = False
    actions: list[str] = field(default_factory=list)

    @property
    def counted_number(self) -> int:
        return len(self.counted)

    @property
    def stage_met(self) -> bool:
        return not self.allowed_stages or self.stage in self.allowed_stages

    @property
    def blockers(self) -> list[str]:
        """What would refuse the approval that completes the count, were it given now."""
        found = [
            f"{need.key}={need.value} (now {'no such tag' if need.now is None else need.now})"
            for need in self.tags
            if not need.met
        ]
        if not self.stage_met:
            found.append(f"the version in {' or '.join(self.allowed_stages)} (now {self.stage})")
        return found

    @property
    def next_completes(self) -> bool:
        """Would one more approval complete the count?"""
        return self.counted_number + 1 >= self.required


def _counted(
    request: TransitionRequest | AliasRequest, policy: StagePolicy | AliasPolicy, digest: str
) -> tuple[list[str], list[str]]:
    """The approvals that count, by the terms that need no further read: given for the bytes
    the version has now, by an account that still exists, not the requester's own where the
    policy forbids it. (An approver whose level was lowered since is found out by the service
    when the count completes, and named in its answer.)"""
    counted: list[str] = []
    lapsed: list[str] = []
    approvals: list[Any] = list(request.approvals.all())  # prefetched with the requests
    for approval in sorted(approvals, key=lambda a: (a.created_at, a.pk)):
        name = approval.approver_username
        if approval.artifact_digest != digest:
            lapsed.append(f"{name} (given for other files)")
        elif name and approval.approver_id is None:
            lapsed.append(f"{name} (the account was deleted)")
        elif name and permissions.self_approval_refused(name, request, policy):
            lapsed.append(f"{name} (the requester)")
        else:
            counted.append(name or "registry")
    return counted, lapsed


def _tags(policy: StagePolicy | AliasPolicy, present: dict[str, str]) -> list[TagNeed]:
    return [
        TagNeed(key=key, value=value, now=present.get(key))
        for key, value in sorted(policy.required_version_tags.items())
    ]


def transition_request_readiness(
    request: TransitionRequest, policy: StagePolicy, present_tags: dict[str, str]
) -> Readiness:
    """``policy``: the one in force for the request's target stage; ``present_tags``: the
    version's tags now (key to value)."""
    model_version = request.model_version
    counted, lapsed = _counted(request, policy, model_version.artifact_digest)
    return Readiness(
        required=policy.required_approvals,
        counted=counted,
        lapsed=lapsed,
        self_approval_allowed=policy.allow_self_approval,
        tags=_tags(policy, present_tags),
        allowed_stages=[],
        stage=model_version.current_stage,
        expires_at=request.expires_at,
    )


def alias_request_readiness(
    request: AliasRequest, policy: AliasPolicy, present_tags: dict[str, str]
) -> Readiness:
    """As :func:`transition_request_readiness`, for a request to move an alias; a policy that
    does not exist (MLflow's behaviour) requires nothing of the version."""
    model_version = request.model_version
    counted, lapsed = _counted(request, policy, model_version.artifact_digest)
    governed = policy.pk is not None  # a merged policy keeps the model's own row identity
    return Readiness(
        required=policy.required_approvals,
        counted=counted,
        lapsed=lapsed,
        self_approval_allowed=policy.allow_self_approval,
        tags=_tags(policy, present_tags) if governed else [],
        allowed_stages=list(policy.allowed_stages) if governed else [],
        stage=model_version.current_stage,
        expires_at=request.expires_at,
    )


APPROVE_ACTIONS = {"APPROVE_TRANSITION_REQUEST", "APPROVE_ALIAS_REQUEST"}


def for_viewer(
    readiness: Readiness,
    *,
    actor: Any,
    request: TransitionRequest | AliasRequest,
    policy: StagePolicy | AliasPolicy,
    actions: list[str],
    decide_rule: str,
) -> Readiness:
    """The readiness with what the viewer may do: ``actions`` (the request's available actions
    for them) without Approve where their approval would complete the count and the move would
    then be refused, and why they may not approve. ``decide_rule``: what deciding needs, in
    words, for a viewer who may not decide."""
    may_approve = bool(APPROVE_ACTIONS.intersection(actions))
    note = ""
    shown = list(actions)
    if may_approve and readiness.next_completes and readiness.blockers:
        shown = [action for action in actions if action not in APPROVE_ACTIONS]
        may_approve = False
        note = (
            "Your approval would complete the count, and the move would be refused: it needs "
            + "; ".join(readiness.blockers)
            + "."
        )
    elif not may_approve:
        if permissions.has_approved(actor, request):
            note = "You have approved this request; it needs another approver."
        elif permissions.self_approval_refused(permissions.acting_username(actor), request, policy):
            note = "You asked for this move, and the policy does not let the requester approve."
        else:
            note = f"Deciding this request needs {decide_rule}."
    return replace(readiness, viewer_note=note, viewer_may_approve=may_approve, actions=shown)


def stage_decide_rule(request: TransitionRequest) -> str:
    """What deciding a transition request needs, in words (``permissions.can_decide_request``)."""
    level = permissions.transition_level(request.model_version.current_stage, request.to_stage)
    return f"the level “{PermissionLevel(level.name).label}” on the model"


def alias_decide_rule() -> str:
    """What deciding an alias request needs, in words (``permissions.can_decide_alias_request``)."""
    return (
        f"the level “{PermissionLevel(permissions.ALIAS_DECIDE_LEVEL.name).label}” on the "
        "model, or being named by the alias "
        "policy as one who may move the alias"
    )


def version_tags(*, model_versions: list[ModelVersion]) -> dict[int, dict[str, str]]:
    """The tags of each version (by id), key to value: one query, none without versions."""
    found: dict[int, dict[str, str]] = {}
    if model_versions:
        for version_id, key, value in ModelVersionTag.objects.filter(
            model_version_id__in={model_version.pk for model_version in model_versions}
        ).values_list("model_version_id", "key", "value"):
            found.setdefault(version_id, {})[key] = value
    return found
