"""Aliases: a name for one version of a model, set and deleted under the model's row lock.

``apply_alias_move`` is the one place an alias changes (a direct set or delete, an approved
alias request, a rollback): it writes the alias row, its history entry and the events, and
closes the requests the move made moot. A model's alias policy (docs/decisions/0015) may
protect an alias, so that only those it names move it directly and everyone else asks
(``alias_requests``), and may require the version's stage and tags; an alias no policy governs
behaves exactly as in MLflow.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts import permissions
from accounts.models import User
from accounts.permissions import Level
from kernel.errors import RegistryError
from registry import policy_terms, validation
from registry.models import (
    AliasPolicy,
    AliasRequest,
    ModelVersion,
    PointerCause,
    PointerKind,
    PointerMove,
    RegisteredModel,
    RegisteredModelAlias,
    Stage,
    TransitionRequestStatus,
)
from registry.selectors.aliases import (
    alias_policies_effective_many,
    alias_policy_effective,
    alias_policy_is_default,
)
from registry.services.common import lock_model_version, lock_registered_model
from registry.services.history import record_alias_move, stage_moves
from registry.services.provenance import promotion_record_link
from webhooks.models import EventType
from webhooks.services.outbox import webhook_event_emit


def alias_policy_refusal(
    policy: AliasPolicy, registered_model: RegisteredModel, rule: str
) -> RegistryError:
    """A refusal by an alias policy, naming the policy and the rule (as stage refusals do)."""
    return policy_terms.refusal(
        policy, f"alias policy of '@{policy.alias}'", registered_model.name, rule
    )


def _direct_movers(policy: AliasPolicy) -> str:
    parts = [part for part in permissions.alias_policy_parts(policy) if part.protected]
    names = sorted(
        {f"user '{user}'" for part in parts for user in part.direct_users}
        | {f"group '{group}'" for part in parts for group in part.direct_groups}
    )
    if len(parts) > 1:
        return "those both policies name (" + ", ".join(names) + ")" if names else "nobody"
    return ", ".join(names) if names else "nobody"


def check_direct_move(
    *, actor: User | None, registered_model: RegisteredModel, policy: AliasPolicy, what: str
) -> None:
    """Refuse a direct set, move or delete of a protected alias unless the policy names the
    actor (``permissions.may_move_alias_directly``); CAN_EDIT was checked by the caller."""
    if alias_policy_is_default(policy) or not any(
        part.protected for part in permissions.alias_policy_parts(policy)
    ):
        return
    level = permissions.effective_level(actor, registered_model)
    if permissions.may_move_alias_directly(actor, policy, level, permissions.group_names(actor)):
        return
    raise alias_policy_refusal(
        policy,
        registered_model,
        f"'@{policy.alias}' is protected: only {_direct_movers(policy)} may {what} it "
        "directly; anyone else asks for the move with an alias request "
        "(/api/2.0/registry/alias-requests/create) and has it approved.",
    )


def check_alias_target(
    *, policy: AliasPolicy, registered_model: RegisteredModel, model_version: ModelVersion
) -> None:
    """Refuse to point the alias at a version the policy does not allow: one outside its
    ``allowed_stages`` or without its ``required_version_tags``. Checked when the move
    applies (a request can become acceptable, or stop being so, while it is open)."""
    if alias_policy_is_default(policy):
        return
    number = model_version.version
    if policy.allowed_stages and model_version.current_stage not in policy.allowed_stages:
        allowed = ", ".join(policy.allowed_stages)
        raise alias_policy_refusal(
            policy,
            registered_model,
            f"allowed_stages is [{allowed}], and version {number} is in "
            f"{model_version.current_stage}.",
        )
    if policy.required_version_tags:
        present = dict(model_version.tags.values_list("key", "value"))
        for key, value in sorted(policy.required_version_tags.items()):
            if present.get(key) != value:
                have = f"it has {present[key]!r}" if key in present else "it has no such tag"
                raise alias_policy_refusal(
                    policy,
                    registered_model,
                    f"required_version_tags needs {key}={value} on version {number} ({have}).",
                )


def apply_alias_move(
    *,
    actor: User | None,
    registered_model: RegisteredModel,
    alias: str,
    model_version: ModelVersion | None,
    cause: PointerCause,
    at: datetime,
    request: AliasRequest | None = None,
    comment: str = "",
) -> PointerMove | None:
    """Point ``alias`` at ``model_version`` (None: delete it): the one place an alias changes.

    The caller holds the model's row lock and has checked permissions and policy. Writes the
    history entry, the events (MLflow's ``..._ALIAS_CREATED`` on every set, as ``mlflow
    server`` does, ``..._ALIAS_DELETED``; ``MODEL_VERSION_ALIAS_MOVED`` when the alias names
    another version than before) and closes the open requests to move the alias where it now
    is. Returns the history entry, or None when nothing changed."""
    current = (
        RegisteredModelAlias.objects.filter(registered_model=registered_model, alias=alias)
        .select_related("model_version")
        .first()
    )
    from_version = current.model_version.version if current is not None else None
    to_version = model_version.version if model_version is not None else None
    if model_version is not None:
        webhook_event_emit(
            event=EventType.MODEL_VERSION_ALIAS_CREATED,
            registered_model=registered_model,
            model_version=model_version,
            payload_data={"alias": alias},
            actor=actor,
            under_lock=True,
        )
    if from_version == to_version:
        return None
    if model_version is None:
        assert current is not None  # from_version differs from None: the alias exists
        current.delete()
        webhook_event_emit(
            event=EventType.MODEL_VERSION_ALIAS_DELETED,
            registered_model=registered_model,
            payload_data={"alias": alias},
            actor=actor,
            under_lock=True,
        )
    else:
        if current is None:
            RegisteredModelAlias.objects.create(
                registered_model=registered_model, alias=alias, model_version=model_version
            )
        else:
            current.model_version = model_version
            current.save(update_fields=["model_version"])
        move = record_alias_move(
            actor=actor,
            registered_model=registered_model,
            alias=alias,
            from_version=from_version,
            to_version=model_version,
            cause=cause,
            at=at,
            request_code=request.code if request is not None else None,
            comment=comment,
        )
        payload: dict[str, Any] = {
            "alias": alias,
            "from_version": str(from_version) if from_version is not None else "",
            "to_version": str(to_version),
            "comment": comment,
        }
        if move.promotion_record is not None:
            # Where the signed record of this move is, and its digest (docs/webhooks.md).
            payload["promotion_record"] = promotion_record_link(move.promotion_record)
        webhook_event_emit(
            event=EventType.MODEL_VERSION_ALIAS_MOVED,
            registered_model=registered_model,
            model_version=model_version,
            payload_data=payload,
            actor=actor,
            under_lock=True,
        )
        _close_moot_requests(registered_model, alias, model_version, request, at)
        return move
    return record_alias_move(
        actor=actor,
        registered_model=registered_model,
        alias=alias,
        from_version=from_version,
        to_version=model_version,
        cause=cause,
        at=at,
        request_code=request.code if request is not None else None,
        comment=comment,
    )


def _close_moot_requests(
    registered_model: RegisteredModel,
    alias: str,
    model_version: ModelVersion,
    request: AliasRequest | None,
    at: datetime,
) -> None:
    """Open requests to move the alias to the version it now names have nothing left to do."""
    moot = AliasRequest.objects.filter(
        registered_model=registered_model,
        alias=alias,
        model_version=model_version,
        status=TransitionRequestStatus.OPEN,
    )
    if request is not None:
        moot = moot.exclude(pk=request.pk)
    moot.update(
        status=TransitionRequestStatus.SUPERSEDED,
        closed_at=at,
        closing_comment=(
            f"Closed: '@{alias}' reached version {model_version.version} another way, so the "
            "request has nothing left to do."
        ),
    )


def registered_model_alias_set(
    *, actor: User | None, name: Any, alias: Any, version: Any
) -> RegisteredModelAlias:
    """Point an alias at a version (MLflow's ``set_registered_model_alias``): CAN_EDIT, and
    what the alias policy in force allows a direct move."""
    name = validation.require_string(name, "name")
    alias = validation.alias_name(alias, for_set=True)
    number = validation.version_number(version)
    with transaction.atomic():
        registered_model, model_version = lock_model_version(
            name, number, actor=actor, level=Level.CAN_EDIT, action="edit the aliases of"
        )
        now = timezone.now()  # after the lock: the history's order is the lock's
        policy = alias_policy_effective(registered_model=registered_model, alias=alias)
        check_direct_move(actor=actor, registered_model=registered_model, policy=policy, what="set")
        check_alias_target(
            policy=policy, registered_model=registered_model, model_version=model_version
        )
        apply_alias_move(
            actor=actor,
            registered_model=registered_model,
            alias=alias,
            model_version=model_version,
            cause=PointerCause.SET,
            at=now,
        )
    return RegisteredModelAlias.objects.select_related("model_version").get(
        registered_model=registered_model, alias=alias
    )


def registered_model_alias_delete(*, actor: User | None, name: Any, alias: Any) -> None:
    """Delete an alias (MLflow's ``delete_registered_model_alias``): CAN_EDIT, and, for a
    protected alias, a policy that names the actor. Deleting an alias that does not exist
    changes nothing, as in MLflow."""
    name = validation.require_string(name, "name")
    alias = validation.alias_name(alias, for_set=False)
    with transaction.atomic():
        registered_model = lock_registered_model(name)
        permissions.require_level(
            actor, registered_model, Level.CAN_EDIT, action="edit the aliases of"
        )
        now = timezone.now()
        policy = alias_policy_effective(registered_model=registered_model, alias=alias)
        check_direct_move(
            actor=actor, registered_model=registered_model, policy=policy, what="delete"
        )
        apply_alias_move(
            actor=actor,
            registered_model=registered_model,
            alias=alias,
            model_version=None,
            cause=PointerCause.DELETED,
            at=now,
        )


@dataclass(frozen=True)
class DeletionGuard:
    """Why a version may not simply be deleted, and what to do first."""

    reason: str
    remedy: str


def deletion_guards(
    registered_model: RegisteredModel, versions: list[ModelVersion]
) -> dict[int, list[DeletionGuard]]:
    """Why each of ``versions`` may not simply be deleted, by version number (none: it may):
    a protected alias names it, or it is in Production. A deployment follows either, and
    MLflow would drop the alias with the version without a word."""
    guards: dict[int, list[DeletionGuard]] = {}
    for model_version in versions:
        if model_version.current_stage == Stage.PRODUCTION:
            guards.setdefault(model_version.version, []).append(
                DeletionGuard("it is in Production", "Move it out of Production first.")
            )
    by_pk = {model_version.pk: model_version for model_version in versions}
    rows = list(
        RegisteredModelAlias.objects.filter(
            registered_model=registered_model, model_version_id__in=list(by_pk)
        ).order_by("alias")
    )
    policies = alias_policies_effective_many(pairs=[(registered_model, row.alias) for row in rows])
    for row in rows:
        policy = policies[(registered_model.pk, row.alias)]
        if any(part.protected for part in permissions.alias_policy_parts(policy)):
            guards.setdefault(by_pk[row.model_version_id].version, []).append(
                DeletionGuard(
                    f"protected alias '@{row.alias}' names it",
                    f"Point '@{row.alias}' at another version first.",
                )
            )
    return guards


def aliases_deleted_with(
    *,
    actor: User | None,
    registered_model: RegisteredModel,
    versions: list[ModelVersion],
    cause: PointerCause,
    at: datetime,
) -> None:
    """Record on the history that the aliases naming ``versions`` go with them (the database
    deletes the rows by cascade, as MLflow does), and that the versions leave their stages."""
    by_pk = {model_version.pk: model_version for model_version in versions}
    author = permissions.acting_username(actor)
    entries = [
        PointerMove(
            registered_model_id=registered_model.pk,
            model_name=registered_model.name,
            kind=PointerKind.ALIAS,
            pointer=alias,
            from_version=by_pk[model_version_id].version,
            cause=cause,
            actor_username=author,
            created_at=at,
        )
        for alias, model_version_id in RegisteredModelAlias.objects.filter(
            registered_model=registered_model, model_version_id__in=list(by_pk)
        )
        .order_by("alias")
        .values_list("alias", "model_version_id")
    ]
    for model_version in versions:
        entries += stage_moves(
            actor=actor,
            registered_model=registered_model,
            model_version=model_version,
            from_stage=model_version.current_stage,
            to_stage="",
            cause=cause,
            at=at,
        )
    PointerMove.objects.bulk_create(entries, batch_size=1000)
