"""The stage engine: the one place a version changes stage (``apply_stage_change``), direct
moves, ``archive_existing_versions``, and the stage policies' refusals (direct moves, required
tags, who may set the tags a policy requires). Requests and their approvals
(``transition_requests``) apply their moves through it."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts import permissions
from accounts.models import User
from accounts.permissions import Level
from kernel.errors import RegistryError
from registry import policy_terms, validation
from registry.models import (
    Activity,
    ActivityType,
    ModelVersion,
    ModelVersionStatus,
    PointerCause,
    RegisteredModel,
    Stage,
    StagePolicy,
    TransitionRequest,
    TransitionRequestStatus,
)
from registry.selectors import (
    gate_tag_keepers,
    stage_policies_effective,
    stage_policy_effective,
    with_tags_and_aliases_of,
)
from registry.services.common import (
    COMMENT_MAX_LENGTH,
    activity_row,
    lock_model_version,
    update_returning,
)
from registry.services.history import record_stage_move
from registry.services.provenance import promotion_record_link
from webhooks.models import EventType
from webhooks.services.outbox import webhook_event_emit


def policy_refusal(
    policy: StagePolicy, registered_model: RegisteredModel, rule: str
) -> RegistryError:
    """A refusal by a stage policy, naming the policy and the rule."""
    return policy_terms.refusal(policy, f"{policy.stage} stage policy", registered_model.name, rule)


def check_required_tags(
    policy: StagePolicy,
    registered_model: RegisteredModel,
    model_version: ModelVersion,
    *,
    why: str = "",
) -> None:
    if not policy.required_version_tags:
        return
    present = dict(model_version.tags.values_list("key", "value"))
    for key, value in sorted(policy.required_version_tags.items()):
        if present.get(key) != value:
            have = f"it has {present[key]!r}" if key in present else "it has no such tag"
            raise policy_refusal(
                policy,
                registered_model,
                f"required_version_tags needs {key}={value} on version {model_version.version} "
                f"({have})" + (f", so {why} may not archive it." if why else "."),
            )


def check_gate_tags(
    *,
    actor: User | None,
    registered_model: RegisteredModel,
    current_stage: str,
    keys: set[str],
) -> None:
    """Refuse to set or delete a gate tag (a key that a stage policy in force for the model
    requires) unless the actor may: a member of one of the policy's ``gate_tag_groups`` or,
    when it names none, someone who could approve the move into its stage (the level
    ``transition_level`` gives for a version in ``current_stage``). CAN_EDIT, enough for other
    tags, is not: the requester of a move must not certify the version themselves. Where both
    the model's policy and the registry-wide one require a key, the actor must satisfy both
    (``selectors.gate_tag_keepers``). Registry admins may always."""
    if not keys or actor is None or permissions.is_admin(actor):  # None: the registry itself
        return
    level: Level | None = None
    groups: set[str] | None = None
    for stage, policy in stage_policies_effective(registered_model=registered_model).items():
        for key, keepers in sorted(gate_tag_keepers(policy).items()):
            if key not in keys:
                continue
            for keeper in keepers:
                gate = f"'{key}' is one of its gate tags (required_version_tags)"
                if keeper.gate_tag_groups:
                    if groups is None:
                        groups = set(actor.groups.values_list("name", flat=True))
                    if groups.isdisjoint(keeper.gate_tag_groups):
                        named = ", ".join(f"'{group}'" for group in keeper.gate_tag_groups)
                        raise policy_refusal(
                            keeper,
                            registered_model,
                            f"{gate}, which only members of the group(s) {named} "
                            f"(gate_tag_groups) may set or delete; {actor.get_username()} is "
                            "in none of them.",
                        )
                    continue
                needed = permissions.transition_level(current_stage, stage)
                if level is None:
                    level = permissions.effective_level(actor, registered_model)
                if level < needed:
                    raise policy_refusal(
                        keeper,
                        registered_model,
                        f"{gate}, which only those who may approve moves into {stage} "
                        f"({needed.name}) may set or delete, as the policy names no "
                        f"gate_tag_groups; {actor.get_username()} has {level.name}.",
                    )


def apply_stage_change(
    *,
    actor: User | None,
    registered_model: RegisteredModel,
    model_version: ModelVersion,
    target: Stage,
    archive_existing_versions: bool,
    activity_type: ActivityType,
    comment: str,
    at: Any,
    request: TransitionRequest | None = None,
) -> Activity:
    """Move a locked version to ``target``: the one place a stage changes.

    Archives the others in the stage when asked (if the actor could move each of them to
    Archived directly: :func:`_check_archiving`), writes the activities, emits the events, and
    closes the open requests the move made moot. The caller holds the model's row lock, taken
    in this transaction, and has checked permissions and policy.

    The trail entries of the move (the archived versions', the version's own, the closed
    requests') are appended together at the end, in that order, one chain extension for all
    of them (docs/decisions/0021-writes-in-fewer-statements.md).
    """
    if model_version.status != ModelVersionStatus.READY:
        # Only READY versions move: a verified copy, or a reference (docs/architecture.md).
        raise RegistryError.invalid(
            f"Model version {model_version.version} of '{registered_model.name}' is "
            f"{model_version.status}: only READY versions move between stages."
        )
    others: list[ModelVersion] = []
    if archive_existing_versions:
        others = list(
            registered_model.versions.filter(current_stage=target).exclude(pk=model_version.pk)
        )
        _check_archiving(
            actor=actor, registered_model=registered_model, others=others, moved=model_version
        )
    # Nothing is written before this point, so a refusal above leaves everything as it was.
    trail: list[Activity] = []
    archived = _archive_others(
        actor=actor, model_version=model_version, others=others, stage=target, at=at, trail=trail
    )
    from_stage = model_version.current_stage
    model_version.current_stage = target
    model_version.updated_at = at
    model_version.save(update_fields=["current_stage", "updated_at"])
    registered_model.updated_at = at
    registered_model.save(update_fields=["updated_at"])
    activity = activity_row(
        actor=actor,
        model_version=model_version,
        activity_type=activity_type,
        from_stage=from_stage,
        to_stage=target,
        comment=comment,
        request=request,
        at=at,
    )
    trail.append(activity)
    record = record_stage_move(
        actor=actor,
        registered_model=registered_model,
        model_version=model_version,
        from_stage=from_stage,
        to_stage=target,
        cause=PointerCause.APPROVED_REQUEST if request else PointerCause.TRANSITION,
        at=at,
        request_code=request.code if request else None,
        comment=comment,
    )
    payload: dict[str, Any] = {"from_stage": from_stage, "to_stage": target, "comment": comment}
    if record is not None:
        # Where the signed record of this move is, and its digest (docs/webhooks.md).
        payload["promotion_record"] = promotion_record_link(record)
    webhook_event_emit(
        event=EventType.MODEL_VERSION_TRANSITIONED_STAGE,
        registered_model=registered_model,
        model_version=model_version,
        payload_data=payload,
        actor=actor,
        under_lock=True,
    )
    trail += _close_moot_requests(moved=[model_version, *archived], at=at, except_request=request)
    Activity.objects.append(trail, model_locked=True)
    return activity


def _check_archiving(
    *,
    actor: User | None,
    registered_model: RegisteredModel,
    others: list[ModelVersion],
    moved: ModelVersion,
) -> None:
    """Refuse ``archive_existing_versions`` unless the actor could move each of ``others`` to
    Archived directly: the level of that move, and the Archived policy in force (direct moves
    allowed, its required tags on each version). Archiving as a side effect is a shortcut for
    those moves, never a way around the policy that governs them (docs/architecture.md, "The
    approval workflow")."""
    if not others:
        return
    stage = others[0].current_stage  # they are all in the stage the version moves to
    permissions.require_can_transition(actor, registered_model, stage, Stage.ARCHIVED)
    policy = stage_policy_effective(registered_model=registered_model, stage=Stage.ARCHIVED)
    if not policy.allow_direct_transition:
        numbers = ", ".join(str(other.version) for other in others)
        which = f"version {numbers}" if len(others) == 1 else f"versions {numbers}"
        raise policy_refusal(
            policy,
            registered_model,
            f"allow_direct_transition is off, so archive_existing_versions may not archive "
            f"{which} (in {stage}) when version {moved.version} moves there: move without "
            "archiving, or have the moves to Archived approved by request first.",
        )
    for other in others:
        other.registered_model = registered_model
        check_required_tags(policy, registered_model, other, why="archive_existing_versions")


def _archive_others(
    *,
    actor: User | None,
    model_version: ModelVersion,
    others: list[ModelVersion],
    stage: Stage,
    at: Any,
    trail: list[Activity],
) -> list[ModelVersion]:
    """Archive ``others``; their trail entries go to ``trail``, which the caller appends."""
    for other in others:
        other.registered_model = model_version.registered_model
        trail.append(
            activity_row(
                actor=actor,
                model_version=other,
                activity_type=ActivityType.SYSTEM_TRANSITION,
                from_stage=other.current_stage,
                to_stage=Stage.ARCHIVED,
                system_comment=f"Archived when version {model_version.version} moved to {stage}.",
                at=at,
            )
        )
        record_stage_move(
            actor=actor,
            registered_model=model_version.registered_model,
            model_version=other,
            from_stage=other.current_stage,
            to_stage=Stage.ARCHIVED,
            cause=PointerCause.ARCHIVED,
            at=at,
        )
        webhook_event_emit(
            event=EventType.MODEL_VERSION_TRANSITIONED_STAGE,
            registered_model=model_version.registered_model,
            model_version=other,
            payload_data={"from_stage": other.current_stage, "to_stage": Stage.ARCHIVED},
            actor=actor,
            under_lock=True,
        )
        other.current_stage = Stage.ARCHIVED
    if others:
        ModelVersion.objects.filter(pk__in=[other.pk for other in others]).update(
            current_stage=Stage.ARCHIVED, updated_at=at
        )
    return others


def _close_moot_requests(
    *, moved: list[ModelVersion], at: Any, except_request: TransitionRequest | None
) -> list[Activity]:
    """Open requests to move a version into the stage it is now in have nothing left to do:
    closed in one ``UPDATE ... RETURNING`` for all the versions a move moved
    (docs/decisions/0021-writes-in-fewer-statements.md). Returns their trail entries, unsaved,
    in the order of ``moved`` and then of the requests' ids."""
    reached = Q()
    for model_version in moved:
        reached |= Q(model_version_id=model_version.pk, to_stage=model_version.current_stage)
    moot = TransitionRequest.objects.filter(reached, status=TransitionRequestStatus.OPEN)
    if except_request is not None:
        moot = moot.exclude(pk=except_request.pk)
    closed = update_returning(
        moot,
        {"status": TransitionRequestStatus.SUPERSEDED, "closed_at": at},
        returning=("id", "code", "model_version_id", "from_stage", "to_stage"),
    )
    rank = {model_version.pk: place for place, model_version in enumerate(moved)}
    by_pk = {model_version.pk: model_version for model_version in moved}
    entries = []
    for pk, code, model_version_id, from_stage, to_stage in sorted(
        closed, key=lambda row: (rank[row[2]], row[0])
    ):
        model_version = by_pk[model_version_id]
        request = TransitionRequest(
            pk=pk,
            code=code,
            model_version=model_version,
            from_stage=from_stage,
            to_stage=to_stage,
            status=TransitionRequestStatus.SUPERSEDED,
            closed_at=at,
        )
        entries.append(
            activity_row(
                actor=None,
                model_version=model_version,
                activity_type=ActivityType.CANCELLED_REQUEST,
                from_stage=from_stage,
                to_stage=to_stage,
                system_comment=(
                    f"Closed: version {model_version.version} reached {to_stage} "
                    "another way, so the request has nothing left to do."
                ),
                request=request,
                at=at,
            )
        )
    return entries


def model_version_stage_transition(
    *,
    actor: User | None,
    name: Any,
    version: Any,
    stage: Any,
    archive_existing_versions: Any = False,
    comment: Any = None,
) -> ModelVersion:
    """Move a version to ``stage`` directly (no request); optionally archive the others there.

    Needs the level of the move, and a stage policy that allows direct transitions and whose
    required tags the version carries. Runs under the registered model's row lock.
    """
    name = validation.require_string(name, "name")
    number = validation.version_number(version)
    target = validation.stage(stage)
    archive = validation.boolean(archive_existing_versions, "archive_existing_versions")
    comment = validation.bounded_text(comment, "comment", COMMENT_MAX_LENGTH)
    check_archive_target(archive, target)
    with transaction.atomic():
        # The level a move needs depends on the stage the version is in: checked just below.
        registered_model, model_version = lock_model_version(
            name, number, actor=actor, level=None, action=""
        )
        permissions.require_can_transition(
            actor, registered_model, model_version.current_stage, target
        )
        policy = stage_policy_effective(registered_model=registered_model, stage=target)
        if not policy.allow_direct_transition:
            raise policy_refusal(
                policy,
                registered_model,
                "allow_direct_transition is off: create a transition request and have it approved.",
            )
        check_required_tags(policy, registered_model, model_version)
        apply_stage_change(
            actor=actor,
            registered_model=registered_model,
            model_version=model_version,
            target=target,
            archive_existing_versions=archive,
            activity_type=ActivityType.APPLIED_TRANSITION,
            comment=comment,
            at=timezone.now(),
        )
        # The answer's tags and aliases, read under the lock in one statement; the rest of the
        # version is what was locked and written (docs/decisions/0021).
        with_tags_and_aliases_of(model_version)
    return model_version


def check_archive_target(archive: bool, target: Stage) -> None:
    if archive and target not in validation.ACTIVE_STAGES:
        raise RegistryError.invalid(
            "Model version transition cannot archive existing model versions because "
            f"'{target}' is not an Active stage. Valid stages are ['Staging', 'Production']"
        )
