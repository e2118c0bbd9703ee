"""Reads of the governed aliases: the alias policy in force, alias requests and what a caller
may do with them, the history of an alias, and what an alias or a stage named at a time T
(docs/decisions/0015-governed-aliases.md)."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from django.db.models import Q

from accounts import permissions
from accounts.permissions import Level
from kernel import paging
from kernel.errors import ErrorCode, RegistryError
from registry import policy_terms, validation
from registry.conf import registry_settings
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
from registry.selectors.registered_models import registered_model_get

MAX_RESULTS_HISTORY_DEFAULT = 100

# --- Policies ---------------------------------------------------------------------------------


def _with_floor(own: AliasPolicy | None, floor: AliasPolicy | None, alias: str) -> AliasPolicy:
    """The alias policy in force: the model's own tightened, term by term, by the registry-wide
    one (a floor it cannot relax), as stage policies are (``policy_terms.tighten``): protected
    where either protects; ``allowed_stages`` the stages both allow (either alone where the
    other allows any). Who may move directly is decided part by part
    (``permissions.may_move_alias_directly``). Without a policy of its own, the registry-wide
    one; without either, MLflow's behaviour (an unsaved policy with the defaults). A merged
    policy keeps the model's row identity, carries ``own`` and ``floor``, and is never saved."""
    if own is None or floor is None:
        return own or floor or AliasPolicy(registered_model=None, alias=alias)
    merged = copy.copy(own)
    policy_terms.tighten(merged, own, floor)
    merged.protected = own.protected or floor.protected
    if own.allowed_stages and floor.allowed_stages:
        merged.allowed_stages = [s for s in own.allowed_stages if s in floor.allowed_stages]
    else:
        merged.allowed_stages = own.allowed_stages or floor.allowed_stages
    merged.own = own  # type: ignore[attr-defined]
    merged.floor = floor  # type: ignore[attr-defined]
    return merged


def alias_policy_is_default(policy: AliasPolicy) -> bool:
    """No policy at all governs the alias: MLflow's behaviour."""
    return policy.pk is None


def alias_policy_effective(*, registered_model: RegisteredModel, alias: str) -> AliasPolicy:
    """The policy for moves of this model's ``alias`` (:func:`_with_floor`)."""
    policies = {
        policy.registered_model_id: policy
        for policy in AliasPolicy.objects.filter(
            Q(registered_model=registered_model) | Q(registered_model__isnull=True), alias=alias
        )
    }
    own = policies.get(registered_model.pk)
    if own is not None:
        own.registered_model = registered_model
    return _with_floor(own, policies.get(None), alias)


def alias_policies_effective_many(
    *, pairs: Iterable[tuple[RegisteredModel, str]]
) -> dict[tuple[int, str], AliasPolicy]:
    """:func:`alias_policy_effective` for each (model, alias), by (model pk, alias), in one
    query."""
    wanted = {(registered_model.pk, alias): registered_model for registered_model, alias in pairs}
    if not wanted:
        return {}
    aliases = {alias for _, alias in wanted}
    found: dict[tuple[int | None, str], AliasPolicy] = {}
    for policy in AliasPolicy.objects.filter(
        Q(registered_model__in={pk for pk, _ in wanted}) | Q(registered_model__isnull=True),
        alias__in=aliases,
    ):
        found[(policy.registered_model_id, policy.alias)] = policy
    result = {}
    for (pk, alias), registered_model in wanted.items():
        own = found.get((pk, alias))
        if own is not None:
            own.registered_model = registered_model
        result[(pk, alias)] = _with_floor(own, found.get((None, alias)), alias)
    return result


def alias_policies_in_force(*, actor: Any, name: str | None) -> list[AliasPolicy]:
    """The alias policies that apply: to model ``name`` (readable by the actor), one per alias
    that has a policy of its own or a registry-wide one; with no name, the registry-wide
    policies (any signed-in user may read them). By alias name."""
    if name is None:
        if not permissions.is_signed_in(actor) and actor is not None:
            raise RegistryError(ErrorCode.UNAUTHENTICATED, "Authentication is required.")
        return list(AliasPolicy.objects.filter(registered_model=None).order_by("alias"))
    registered_model = registered_model_get(actor=actor, name=name)
    aliases = set(
        AliasPolicy.objects.filter(
            Q(registered_model=registered_model) | Q(registered_model__isnull=True)
        ).values_list("alias", flat=True)
    )
    policies = alias_policies_effective_many(pairs=[(registered_model, alias) for alias in aliases])
    return [policies[(registered_model.pk, alias)] for alias in sorted(aliases)]


# --- Requests ---------------------------------------------------------------------------------


def _requests() -> Any:
    return AliasRequest.objects.select_related(
        "registered_model", "model_version__registered_model"
    ).prefetch_related("approvals")


def alias_requests_open(*, actor: Any, name: Any, alias: Any = None) -> list[AliasRequest]:
    """The open requests of a model (of one alias, if given), oldest first."""
    registered_model = registered_model_get(actor=actor, name=name)
    requests = _requests().filter(
        registered_model=registered_model, status=TransitionRequestStatus.OPEN
    )
    if alias not in (None, ""):
        requests = requests.filter(alias=validation.alias_name(alias, for_set=False))
    return list(requests.order_by("created_at", "id"))


def alias_requests_open_readable(*, actor: Any, limit: int) -> list[AliasRequest]:
    """The oldest open alias requests, at most ``limit``, on the models the actor can read."""
    return list(
        _requests()
        .filter(status=TransitionRequestStatus.OPEN)
        .filter(permissions.readable_models_q(actor, model_field="registered_model_id"))
        .order_by("created_at", "id")[:limit]
    )


def alias_request_available_actions(
    actor: Any,
    request: AliasRequest,
    *,
    level: Level | None = None,
    policy: AliasPolicy | None = None,
    groups: set[str] | None = None,
) -> list[str]:
    """What the caller may do with an open alias request, by the rules the services refuse
    with (``accounts.permissions``). ``level``, ``policy`` and ``groups`` may be passed in
    when already known, so a list costs no query per row."""
    registered_model = request.registered_model
    if level is None:
        level = permissions.effective_level(actor, registered_model)
    if policy is None:
        policy = alias_policy_effective(registered_model=registered_model, alias=request.alias)
    if groups is None:
        groups = permissions.group_names(actor)
    actions = []
    if permissions.can_cancel_request(actor, request, level):
        actions.append("CANCEL_ALIAS_REQUEST")
    if permissions.can_decide_alias_request(actor, policy, level, groups):
        if permissions.can_approve_alias_request(actor, request, policy, level, groups):
            actions.append("APPROVE_ALIAS_REQUEST")
        actions.append("REJECT_ALIAS_REQUEST")
    return actions


# --- History ----------------------------------------------------------------------------------


def alias_last_move(*, registered_model: RegisteredModel, alias: str) -> PointerMove | None:
    """The alias's latest history entry, unchecked: for the rollback service."""
    return (
        PointerMove.objects.filter(
            registered_model_id=registered_model.pk, kind=PointerKind.ALIAS, pointer=alias
        )
        .order_by("-created_at", "-id")
        .first()
    )


def alias_history(
    *, actor: Any, name: Any, alias: Any, max_results: Any = None, page_token: str | None = None
) -> tuple[list[PointerMove], str]:
    """One page of the history of an alias of a model, oldest first: every set, move and
    deletion, with the version it left and the one it reached."""
    registered_model = registered_model_get(actor=actor, name=name)
    alias = validation.alias_name(alias, for_set=False)
    return paging.paginate(
        PointerMove.objects.filter(
            registered_model_id=registered_model.pk, kind=PointerKind.ALIAS, pointer=alias
        ).order_by("created_at", "id"),
        max_results=max_results,
        page_token=page_token,
        default=MAX_RESULTS_HISTORY_DEFAULT,
        maximum=registry_settings().max_results_model_versions,
        keyset=["created_at", "id"],
    )


def _instant(timestamp: Any) -> datetime:
    if isinstance(timestamp, bool):
        raise RegistryError.invalid("Parameter 'timestamp' must be milliseconds since the epoch.")
    try:
        milliseconds = int(timestamp)
    except (TypeError, ValueError):
        raise RegistryError.invalid(
            "Parameter 'timestamp' must be milliseconds since the epoch."
        ) from None
    if milliseconds < 0 or milliseconds > 253_402_300_799_999:
        raise RegistryError.invalid("Parameter 'timestamp' is out of range.")
    return datetime.fromtimestamp(milliseconds / 1000, tz=UTC)


def _history_began() -> datetime | None:
    """When the history began on a registry that had aliases or stages before it (the time of
    its BASELINE entries); None when it began with the registry."""
    first = PointerMove.objects.filter(cause=PointerCause.BASELINE).order_by("created_at").first()
    return first.created_at if first else None


def pointer_as_of(
    *, actor: Any, name: Any, timestamp: Any, alias: Any = None, stage: Any = None
) -> list[int]:
    """The versions an alias (at most one) or a stage named at ``timestamp`` (ms), replayed
    from the history: for an alias, the version its last entry up to then reached; for a
    stage, the versions that entered it and had not left it by then."""
    registered_model = registered_model_get(actor=actor, name=name)
    if (alias in (None, "")) == (stage in (None, "")):
        raise RegistryError.invalid("Give exactly one of 'alias' and 'stage'.")
    at = _instant(timestamp)
    began = _history_began()
    if began is not None and at < began:
        raise RegistryError.invalid(
            f"The history of aliases and stages begins at {began:%Y-%m-%d %H:%M:%S} UTC "
            f"({int(began.timestamp() * 1000)} ms): nothing earlier is known."
        )
    entries = PointerMove.objects.filter(
        registered_model_id=registered_model.pk, created_at__lte=at
    )
    if alias not in (None, ""):
        last = (
            entries.filter(
                kind=PointerKind.ALIAS, pointer=validation.alias_name(alias, for_set=False)
            )
            .order_by("-created_at", "-id")
            .first()
        )
        return [last.to_version] if last is not None and last.to_version is not None else []
    named: list[int] = []
    for left, reached in (
        entries.filter(kind=PointerKind.STAGE, pointer=validation.stage(stage))
        .order_by("created_at", "id")
        .values_list("from_version", "to_version")
    ):
        if left is not None and left in named:
            named.remove(left)
        if reached is not None and reached not in named:
            named.append(reached)
    return sorted(named)


# --- The model page -----------------------------------------------------------------------------


def aliases_with_versions(*, registered_model: RegisteredModel) -> list[RegisteredModelAlias]:
    """The model's aliases with the version each names (and its stage), by alias name."""
    return list(
        RegisteredModelAlias.objects.filter(registered_model=registered_model)
        .select_related("model_version")
        .order_by("alias")
    )


def archived_alias_targets(*, registered_model: RegisteredModel) -> list[RegisteredModelAlias]:
    """The aliases that name an Archived version: a deployment probably follows a stale name."""
    return [
        alias
        for alias in aliases_with_versions(registered_model=registered_model)
        if alias.model_version.current_stage == Stage.ARCHIVED
    ]


def model_version_for_alias_target(
    *, registered_model: RegisteredModel, number: int
) -> ModelVersion | None:
    """The model's version ``number``, unchecked, or None: for the rollback service."""
    model_version = registered_model.versions.filter(version=number).first()
    if model_version is not None:
        model_version.registered_model = registered_model
    return model_version


def alias_history_recent(*, registered_model: RegisteredModel, limit: int) -> list[PointerMove]:
    """The model's latest alias moves, newest first (the model page's history)."""
    return list(
        PointerMove.objects.filter(registered_model_id=registered_model.pk, kind=PointerKind.ALIAS)
        .exclude(cause=PointerCause.BASELINE)
        .order_by("-created_at", "-id")[:limit]
    )


def alias_requests_open_of(*, registered_model: RegisteredModel) -> list[AliasRequest]:
    """The model's open alias requests, oldest first (the model page; the caller has read it)."""
    return list(
        _requests()
        .filter(registered_model=registered_model, status=TransitionRequestStatus.OPEN)
        .order_by("created_at", "id")
    )


def alias_requests_by(*, actor: Any, limit: int) -> list[AliasRequest]:
    """The alias requests the actor made, on the models they can still read, newest first, at
    most ``limit`` (whatever their status)."""
    if not permissions.is_signed_in(actor):
        return []
    return list(
        _requests()
        .filter(requested_by=actor)
        .filter(permissions.readable_models_q(actor, model_field="registered_model_id"))
        .order_by("-created_at", "-id")[:limit]
    )


def alias_moves_of_version(*, registered_model: RegisteredModel, version: int) -> list[PointerMove]:
    """Every move of the model's aliases that reached or left ``version``, oldest first (its
    page's timeline; the caller checked that the actor may read the model)."""
    return list(
        PointerMove.objects.filter(registered_model=registered_model, kind=PointerKind.ALIAS)
        .filter(Q(to_version=version) | Q(from_version=version))
        .order_by("created_at", "id")
    )


def alias_requests_of_version(*, model_version: ModelVersion) -> list[AliasRequest]:
    """Every request to point an alias at ``model_version``, whatever its status, oldest
    first, with its approvals (its page's timeline; the caller has read the version)."""
    return list(
        AliasRequest.objects.filter(model_version=model_version)
        .prefetch_related("approvals")
        .order_by("created_at", "id")
    )
