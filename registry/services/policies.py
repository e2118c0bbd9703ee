"""Stage policies: set and delete a model's (or the registry-wide) policy for moves into a
stage, with the validation of its terms and an audit entry for each change. The policy in
force is read by ``registry.selectors.stage_policy_effective``; the stage engine applies it."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts import permissions
from accounts.models import User
from registry import policy_terms, validation
from registry.models import AuditEntry, RegisteredModel, StagePolicy
from registry.selectors import registered_model_by_name


def _policy_scope(actor: User | None, name: Any) -> RegisteredModel | None:
    """The model a policy belongs to (None: the registry default), after the permission check:
    ``permissions.require_can_change_policies``."""
    registered_model = (
        None
        if name in (None, "")
        else registered_model_by_name(validation.require_string(name, "name"))
    )
    permissions.require_can_change_policies(actor, registered_model)
    return registered_model


def stage_policy_set(
    *,
    actor: User | None,
    stage: Any,
    name: Any = None,
    required_approvals: Any = None,
    allow_self_approval: Any = None,
    allow_direct_transition: Any = None,
    required_version_tags: Any = None,
    gate_tag_groups: Any = None,
    request_ttl_seconds: Any = None,
) -> StagePolicy:
    """Set the policy for moves into ``stage`` of model ``name`` (or the registry default).
    Fields left out keep their current value (or the default)."""
    target = validation.stage(stage)
    registered_model = _policy_scope(actor, name)
    with transaction.atomic():
        policy = (
            StagePolicy.objects.select_for_update()
            .filter(registered_model=registered_model, stage=target)
            .first()
        )
        before = _policy_terms(policy)
        policy = policy or StagePolicy(registered_model=registered_model, stage=target)
        _policy_update(
            policy,
            required_approvals=required_approvals,
            allow_self_approval=allow_self_approval,
            allow_direct_transition=allow_direct_transition,
            required_version_tags=required_version_tags,
            gate_tag_groups=gate_tag_groups,
            request_ttl_seconds=request_ttl_seconds,
        )
        policy.updated_at = timezone.now()
        policy.save()
        policy_audit(
            actor,
            AuditEntry.Action.STAGE_POLICY_SET,
            registered_model,
            stage=target,
            before=before,
            after=_policy_terms(policy),
        )
    return policy


def _policy_update(
    policy: StagePolicy,
    *,
    required_approvals: Any,
    allow_self_approval: Any,
    allow_direct_transition: Any,
    required_version_tags: Any,
    gate_tag_groups: Any,
    request_ttl_seconds: Any,
) -> None:
    if required_approvals is not None:
        policy.required_approvals = policy_terms.required_approvals(required_approvals)
    if allow_self_approval is not None:
        policy.allow_self_approval = validation.boolean(allow_self_approval, "allow_self_approval")
    if allow_direct_transition is not None:
        policy.allow_direct_transition = validation.boolean(
            allow_direct_transition, "allow_direct_transition"
        )
    if required_version_tags is not None:
        policy.required_version_tags = policy_terms.required_tags(required_version_tags)
    if gate_tag_groups is not None:
        policy.gate_tag_groups = policy_terms.group_names(
            gate_tag_groups,
            "gate_tag_groups",
            empty_means="leave the list empty so that those who may approve moves into the "
            "stage set its gate tags.",
        )
    if request_ttl_seconds is not None:
        policy.request_ttl = policy_terms.request_ttl(request_ttl_seconds)


def _policy_terms(policy: StagePolicy | None) -> dict[str, Any] | None:
    """What a policy requires, as the audit trail keeps it (None: no policy)."""
    if policy is None:
        return None
    return {
        "required_approvals": policy.required_approvals,
        "allow_self_approval": policy.allow_self_approval,
        "allow_direct_transition": policy.allow_direct_transition,
        "required_version_tags": policy.required_version_tags,
        "gate_tag_groups": policy.gate_tag_groups,
        "request_ttl_seconds": int(policy.request_ttl.total_seconds()) if policy.request_ttl else 0,
    }


def policy_audit(
    actor: User | None,
    action: str,
    registered_model: RegisteredModel | None,
    **detail: Any,
) -> None:
    """An audit entry for a policy set or dropped (stage and alias policies alike)."""
    AuditEntry.objects.record(
        action=action, registered_model=registered_model, actor=actor, detail=detail
    )


def stage_policy_delete(*, actor: User | None, stage: Any, name: Any = None) -> None:
    """Drop the policy, so moves into ``stage`` follow the next one out (or the default)."""
    target = validation.stage(stage)
    registered_model = _policy_scope(actor, name)
    with transaction.atomic():
        policy = (
            StagePolicy.objects.select_for_update()
            .filter(registered_model=registered_model, stage=target)
            .first()
        )
        if policy is None:
            return
        before = _policy_terms(policy)
        policy.delete()
        policy_audit(
            actor,
            AuditEntry.Action.STAGE_POLICY_DELETED,
            registered_model,
            stage=target,
            before=before,
        )
