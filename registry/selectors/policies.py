"""The stage policies in force: a model's own, tightened to the registry-wide floor."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from django.db.models import Q

from accounts import permissions
from kernel.errors import ErrorCode, RegistryError
from registry import policy_terms
from registry.models import RegisteredModel, Stage, StagePolicy
from registry.selectors.registered_models import registered_model_get


def _with_floor(own: StagePolicy | None, floor: StagePolicy | None, stage: str) -> StagePolicy:
    """The policy in force: the model's own tightened, term by term, to the registry-wide one,
    which is a floor a model's policy cannot relax (docs/architecture.md, "The approval
    workflow"): the larger number of approvals, self-approval and direct moves only where both
    allow them, the tags of both (the registry-wide value where both name a tag), the shorter
    expiry. Who may set a required tag is decided tag by tag (:func:`gate_tag_keepers`): by
    each of the two policies that requires it. Without a policy of its own, the registry-wide
    one; without either, Databricks' behaviour (an unsaved policy with the defaults). The
    result is for reading only: a merged policy keeps the model's row identity (and its
    ``gate_tag_groups``), carries ``own`` and ``floor``, and is never saved."""
    if own is None or floor is None:
        return own or floor or StagePolicy(registered_model=None, stage=stage)
    merged = copy.copy(own)
    # The terms alias policies share, merged by the same rule as theirs.
    policy_terms.tighten(merged, own, floor)
    merged.allow_direct_transition = own.allow_direct_transition and floor.allow_direct_transition
    merged.own = own
    merged.floor = floor
    return merged


def gate_tag_keepers(policy: StagePolicy) -> dict[str, list[StagePolicy]]:
    """The gate tags of a policy in force (the keys it requires), each with the stored policies
    that decide who may set or delete it: the policy that requires it, or, for a merged policy,
    each of the model's own and the registry-wide one that requires it. A writer must satisfy
    every one listed, so the registry-wide policy's rule for its own gate tags is a floor the
    model cannot relax, and a registry-wide policy has no say over tags it does not require."""
    parts = [policy.own, policy.floor] if getattr(policy, "floor", None) is not None else [policy]
    return {
        key: [part for part in parts if key in part.required_version_tags]
        for key in policy.required_version_tags
    }


def stage_policy_effective(*, registered_model: RegisteredModel, stage: str) -> StagePolicy:
    """The policy for moves of this model into ``stage`` (:func:`_with_floor`)."""
    policies = {
        policy.registered_model_id: policy
        for policy in StagePolicy.objects.filter(
            Q(registered_model=registered_model) | Q(registered_model__isnull=True), stage=stage
        )
    }
    return _with_floor(policies.get(registered_model.pk), policies.get(None), stage)


def stage_policies_effective(*, registered_model: RegisteredModel) -> dict[str, StagePolicy]:
    """:func:`stage_policy_effective` for every stage, in one query."""
    return stage_policies_effective_many(registered_models=[registered_model])[registered_model.pk]


def stage_policies_effective_many(
    *, registered_models: Iterable[RegisteredModel]
) -> dict[int, dict[str, StagePolicy]]:
    """:func:`stage_policies_effective` for each model (by primary key), in one query."""
    by_pk = {registered_model.pk: registered_model for registered_model in registered_models}
    found: dict[tuple[int | None, str], StagePolicy] = {}
    for policy in StagePolicy.objects.filter(
        Q(registered_model__in=list(by_pk)) | Q(registered_model__isnull=True)
    ):
        if policy.registered_model_id is not None:
            policy.registered_model = by_pk[policy.registered_model_id]
        found[(policy.registered_model_id, policy.stage)] = policy
    return {
        pk: {
            stage: _with_floor(found.get((pk, stage)), found.get((None, stage)), stage)
            for stage in Stage.values
        }
        for pk in by_pk
    }


def stage_policies_in_force(*, actor: Any, name: str | None) -> list[StagePolicy]:
    """For each stage, the policy that applies: to model ``name`` (readable by the actor), or,
    with no name, the registry-wide defaults (any signed-in user may read them)."""
    if name is None:
        if not permissions.is_signed_in(actor) and actor is not None:
            raise RegistryError(ErrorCode.UNAUTHENTICATED, "Authentication is required.")
        defaults = {
            policy.stage: policy for policy in StagePolicy.objects.filter(registered_model=None)
        }
        return [defaults.get(stage) or StagePolicy(stage=stage) for stage in Stage.values]
    registered_model = registered_model_get(actor=actor, name=name)
    return list(stage_policies_effective(registered_model=registered_model).values())
