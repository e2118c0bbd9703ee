"""Stage policies: set and delete a model's (or the registry-wide) policy for moves into a
stage, with the validation of its terms and an audit entry for each change. The policy in
force is read by ``registry.selectors.stage_policy_effective``; the stage engine applies it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from accounts import permissions
from accounts.models import User
from kernel.errors import RegistryError
from registry import validation
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
        AuditEntry.objects.record(
            action=AuditEntry.Action.STAGE_POLICY_SET,
            registered_model=registered_model,
            actor=actor,
            detail={"stage": target, "before": before, "after": _policy_terms(policy)},
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
        if isinstance(required_approvals, bool) or not isinstance(required_approvals, int):
            raise RegistryError.invalid("Parameter 'required_approvals' must be an integer.")
        if not 1 <= required_approvals <= 10:
            raise RegistryError.invalid("Parameter 'required_approvals' must be from 1 to 10.")
        policy.required_approvals = required_approvals
    if allow_self_approval is not None:
        policy.allow_self_approval = validation.boolean(allow_self_approval, "allow_self_approval")
    if allow_direct_transition is not None:
        policy.allow_direct_transition = validation.boolean(
            allow_direct_transition, "allow_direct_transition"
        )
    if required_version_tags is not None:
        policy.required_version_tags = _required_tags(required_version_tags)
    if gate_tag_groups is not None:
        policy.gate_tag_groups = _gate_tag_groups(gate_tag_groups)
    if request_ttl_seconds is not None:
        if isinstance(request_ttl_seconds, bool) or not isinstance(request_ttl_seconds, int):
            raise RegistryError.invalid("Parameter 'request_ttl_seconds' must be an integer.")
        if request_ttl_seconds < 0 or request_ttl_seconds > 366 * 86400:
            raise RegistryError.invalid(
                "Parameter 'request_ttl_seconds' must be from 0 (no expiry) to 31622400."
            )
        policy.request_ttl = timedelta(seconds=request_ttl_seconds) if request_ttl_seconds else None


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


def _required_tags(value: Any) -> dict[str, str]:
    """``[{"key", "value"}]`` (the tag shape of the protocol) or ``{"key": "value"}``."""
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list) and all(isinstance(item, dict) for item in value):
        items = [(item.get("key"), item.get("value")) for item in value]
    else:
        raise RegistryError.invalid(
            "Parameter 'required_version_tags' must be a list of {key, value} objects."
        )
    if len(items) > 20:
        raise RegistryError.invalid("A policy may require at most 20 tags.")
    return {validation.tag_key(key): validation.tag_value(tag_value) for key, tag_value in items}


def _gate_tag_groups(value: Any) -> list[str]:
    """Names of existing groups, at most 20; an empty list puts back the default (those who
    may approve the move). An unknown name is refused rather than kept: a typo would leave the
    gate tags to registry admins alone."""
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise RegistryError.invalid("Parameter 'gate_tag_groups' must be a list of group names.")
    names = list(dict.fromkeys(value))
    if len(names) > 20:
        raise RegistryError.invalid("A policy may name at most 20 gate_tag_groups.")
    known = set(Group.objects.filter(name__in=names).values_list("name", flat=True))
    missing = [name for name in names if name not in known]
    if missing:
        raise RegistryError.invalid(
            "Parameter 'gate_tag_groups' names groups that do not exist: "
            + ", ".join(f"'{name}'" for name in missing)
            + ". Create them first, or leave the list empty so that those who may approve "
            "moves into the stage set its gate tags."
        )
    return names


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
        AuditEntry.objects.record(
            action=AuditEntry.Action.STAGE_POLICY_DELETED,
            registered_model=registered_model,
            actor=actor,
            detail={"stage": target, "before": before},
        )
