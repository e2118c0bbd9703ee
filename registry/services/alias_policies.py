"""Alias policies: set and delete a model's (or the registry-wide) policy for one alias name,
with the same checks of the terms stage policies share (``registry.policy_terms``), the same
permission rule and the same audit. The policy in force is read by
``registry.selectors.aliases.alias_policy_effective``; the alias services apply it."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts import permissions
from accounts.models import User
from kernel.errors import RegistryError
from registry import policy_terms, validation
from registry.models import AliasPolicy, AuditEntry, RegisteredModel, Stage
from registry.selectors import registered_model_by_name
from registry.services.policies import policy_audit


def _scope(actor: User | None, name: Any) -> RegisteredModel | None:
    registered_model = (
        None
        if name in (None, "")
        else registered_model_by_name(validation.require_string(name, "name"))
    )
    permissions.require_can_change_policies(actor, registered_model, kind="alias")
    return registered_model


def _allowed_stages(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise RegistryError.invalid("Parameter 'allowed_stages' must be a list of stage names.")
    stages = list(dict.fromkeys(str(validation.stage(item)) for item in value))
    if Stage.NONE in stages and len(stages) == 1:
        raise RegistryError.invalid(
            "Parameter 'allowed_stages' names only None; leave it empty to allow any stage."
        )
    return stages


def _terms(policy: AliasPolicy | None) -> dict[str, Any] | None:
    """What a policy requires, as the audit trail keeps it (None: no policy)."""
    if policy is None:
        return None
    return {
        "protected": policy.protected,
        "direct_users": policy.direct_users,
        "direct_groups": policy.direct_groups,
        "required_approvals": policy.required_approvals,
        "allow_self_approval": policy.allow_self_approval,
        "required_version_tags": policy.required_version_tags,
        "allowed_stages": policy.allowed_stages,
        "request_ttl_seconds": int(policy.request_ttl.total_seconds()) if policy.request_ttl else 0,
    }


def alias_policy_set(
    *,
    actor: User | None,
    alias: Any,
    name: Any = None,
    protected: Any = None,
    direct_users: Any = None,
    direct_groups: Any = None,
    required_approvals: Any = None,
    allow_self_approval: Any = None,
    required_version_tags: Any = None,
    allowed_stages: Any = None,
    request_ttl_seconds: Any = None,
) -> AliasPolicy:
    """Set the policy for ``alias`` of model ``name`` (or the registry-wide one for every
    model's alias of that name). Fields left out keep their current value (or the default)."""
    alias = validation.alias_name(alias, for_set=True)
    registered_model = _scope(actor, name)
    with transaction.atomic():
        policy = (
            AliasPolicy.objects.select_for_update()
            .filter(registered_model=registered_model, alias=alias)
            .first()
        )
        before = _terms(policy)
        policy = policy or AliasPolicy(registered_model=registered_model, alias=alias)
        if protected is not None:
            policy.protected = validation.boolean(protected, "protected")
        if direct_users is not None:
            policy.direct_users = policy_terms.usernames(direct_users, "direct_users")
        if direct_groups is not None:
            policy.direct_groups = policy_terms.group_names(
                direct_groups,
                "direct_groups",
                empty_means="leave the list empty so that the alias moves only by request.",
            )
        if required_approvals is not None:
            policy.required_approvals = policy_terms.required_approvals(required_approvals)
        if allow_self_approval is not None:
            policy.allow_self_approval = validation.boolean(
                allow_self_approval, "allow_self_approval"
            )
        if required_version_tags is not None:
            policy.required_version_tags = policy_terms.required_tags(required_version_tags)
        if allowed_stages is not None:
            policy.allowed_stages = _allowed_stages(allowed_stages)
        if request_ttl_seconds is not None:
            policy.request_ttl = policy_terms.request_ttl(request_ttl_seconds)
        policy.updated_at = timezone.now()
        policy.save()
        policy_audit(
            actor,
            AuditEntry.Action.ALIAS_POLICY_SET,
            registered_model,
            alias=alias,
            before=before,
            after=_terms(policy),
        )
    return policy


def alias_policy_delete(*, actor: User | None, alias: Any, name: Any = None) -> None:
    """Drop the policy, so the alias follows the registry-wide one (or MLflow's behaviour)."""
    alias = validation.alias_name(alias, for_set=False)
    registered_model = _scope(actor, name)
    with transaction.atomic():
        policy = (
            AliasPolicy.objects.select_for_update()
            .filter(registered_model=registered_model, alias=alias)
            .first()
        )
        if policy is None:
            return
        before = _terms(policy)
        policy.delete()
        policy_audit(
            actor,
            AuditEntry.Action.ALIAS_POLICY_DELETED,
            registered_model,
            alias=alias,
            before=before,
        )
