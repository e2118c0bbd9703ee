"""Reads of the registry. Every list is paged and runs a fixed number of queries.

Objects returned for output carry what the serializers need prefetched: ``tags``, ``aliases``
and, on registered models, ``latest_versions`` (the highest version in each stage). The public
functions take the reader as ``actor`` and show only what ``accounts.permissions`` lets them
read; ``registered_model_by_name`` and ``model_version_by_number`` are the unchecked lookups the
services use before their own, stricter checks.
"""

from __future__ import annotations

import copy
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from django.conf import settings
from django.db.models import Max, Model, OuterRef, Q, QuerySet, Subquery

from accounts import permissions
from accounts.permissions import Level
from kernel import paging
from kernel.errors import ErrorCode, RegistryError
from registry import search, validation
from registry.artifacts.paths import version_folder
from registry.models import (
    Activity,
    ActivityType,
    Comment,
    ModelVersion,
    ModelVersionStatus,
    ModelVersionTag,
    RegisteredModel,
    RegisteredModelAlias,
    RegisteredModelTag,
    Stage,
    StagePolicy,
    TransitionRequest,
    TransitionRequestStatus,
)

MAX_RESULTS_REGISTERED_MODELS_DEFAULT = 100
MAX_RESULTS_MODEL_VERSIONS_DEFAULT = 10_000


def _model_version_queryset() -> QuerySet[ModelVersion]:
    """Versions with their registered model; :func:`_with_tags_and_aliases` adds the rest."""
    return ModelVersion.objects.select_related("registered_model")


def _registered_model_queryset() -> QuerySet[RegisteredModel]:
    """Registered models; :func:`_with_model_tags_and_aliases` adds their tags and aliases."""
    return RegisteredModel.objects.select_related("created_by")


class _AttachedRows(QuerySet):
    """The rows of one object's relation, attached by a selector. Reading them (iterating,
    ``len``, ``count``, ``exists``) uses the attached rows; building another query on them
    (``filter``, ``values_list``...) starts from the relation itself, limited to its owner, as
    it would on rows ``prefetch_related`` left behind."""

    _relation_filter: dict[str, Any]

    def _chain(self) -> QuerySet:
        return (
            self.model._default_manager.filter(**self._relation_filter)
            .order_by(*self.query.order_by)
            ._chain()
        )


def _attach(owners: Sequence[Model], relation: str, rows: QuerySet[Any], owner_field: str) -> None:
    """Attach ``rows`` (one query) to their owners as the prefetched ``relation``.

    What ``prefetch_related`` does, without its cost per object (a filtered queryset built for
    each object and each relation), which was most of the time of a search returning many
    objects. ``owner.<relation>.all()`` reads the rows attached here, in ``rows``' order, as it
    would read prefetched ones.
    """
    by_owner: dict[int, list[Any]] = defaultdict(list)
    for row in rows:
        by_owner[getattr(row, owner_field)].append(row)
    for owner in owners:
        attached = _AttachedRows(model=rows.model)
        attached.query.add_ordering(*rows.query.order_by)
        attached._relation_filter = {owner_field: owner.pk}
        attached._result_cache = by_owner.get(owner.pk, [])
        attached._prefetch_done = True  # type: ignore[attr-defined]  # private, not in the stubs
        owner.__dict__.setdefault("_prefetched_objects_cache", {})[relation] = attached


def _with_tags(model_versions: list[ModelVersion]) -> list[ModelVersion]:
    """Attach each version's ``tags`` (by id): one query."""
    if model_versions:
        ids = [model_version.pk for model_version in model_versions]
        tags = ModelVersionTag.objects.filter(model_version_id__in=ids).order_by("id")
        _attach(model_versions, "tags", tags, "model_version_id")
    return model_versions


def _with_tags_and_aliases(model_versions: list[ModelVersion]) -> list[ModelVersion]:
    """Attach each version's ``tags`` (by id) and ``aliases`` (by name): two queries."""
    if model_versions:
        _with_tags(model_versions)
        ids = [model_version.pk for model_version in model_versions]
        aliases = RegisteredModelAlias.objects.filter(model_version_id__in=ids).order_by("alias")
        _attach(model_versions, "aliases", aliases, "model_version_id")
    return model_versions


def _with_model_tags_and_aliases(
    registered_models: list[RegisteredModel],
) -> list[RegisteredModel]:
    """Attach each model's ``tags`` (by id) and ``aliases`` (by name, with the version each
    points at): two queries."""
    if registered_models:
        ids = [registered_model.pk for registered_model in registered_models]
        tags = RegisteredModelTag.objects.filter(registered_model_id__in=ids).order_by("id")
        _attach(registered_models, "tags", tags, "registered_model_id")
        aliases = (
            RegisteredModelAlias.objects.filter(registered_model_id__in=ids)
            .select_related("model_version")
            .order_by("alias")
        )
        _attach(registered_models, "aliases", aliases, "registered_model_id")
    return registered_models


def _attach_latest_versions(registered_models: Sequence[RegisteredModel]) -> None:
    """Set ``latest_versions`` on each model: its highest version per stage, in three queries.

    The first finds, for each model of the page and each stage, the id of its highest version
    (one probe of the (model, stage, version) index each); the second reads those versions, the
    third their tags.
    """
    if not registered_models:
        return
    by_id = {registered_model.pk: registered_model for registered_model in registered_models}
    highest = {
        f"latest_{index}": Subquery(
            ModelVersion.objects.filter(registered_model=OuterRef("pk"), current_stage=stage)
            .order_by("-version")
            .values("pk")[:1]
        )
        for index, stage in enumerate(Stage.values)
    }
    ids = [
        pk
        for row in RegisteredModel.objects.filter(pk__in=by_id)
        .annotate(**highest)
        .values_list(*highest)
        for pk in row
        if pk is not None
    ]
    found: dict[int, list[ModelVersion]] = defaultdict(list)
    versions = _with_tags(list(ModelVersion.objects.filter(pk__in=ids).order_by("version")))
    for model_version in versions:
        model_version.registered_model = by_id[model_version.registered_model_id]
        found[model_version.registered_model_id].append(model_version)
    for registered_model in registered_models:
        registered_model.latest_versions = found.get(registered_model.pk, [])


def registered_model_by_name(name: str) -> RegisteredModel:
    """The registered model called ``name``, unchecked: for services, which check themselves."""
    try:
        return RegisteredModel.objects.get(name=name)
    except RegisteredModel.DoesNotExist:
        raise RegistryError.not_found(f"Registered Model with name={name} not found") from None


def model_version_by_number(name: str, number: int) -> ModelVersion:
    """A version with its registered model, unchecked: for services, which check themselves."""
    registered_model = registered_model_by_name(name)
    try:
        model_version = registered_model.versions.get(version=number)
    except ModelVersion.DoesNotExist:
        raise RegistryError.not_found(
            f"Model Version (name={name}, version={number}) not found"
        ) from None
    model_version.registered_model = registered_model
    return model_version


def _readable(actor: Any, registered_model: RegisteredModel) -> RegisteredModel:
    permissions.require_level(actor, registered_model, Level.CAN_READ, action="read")
    return registered_model


def registered_model_get(*, actor: Any, name: Any) -> RegisteredModel:
    """The registered model, if the actor may read it (no tags, aliases or latest versions)."""
    return _readable(actor, registered_model_by_name(validation.require_string(name, "name")))


def registered_model_detail(*, actor: Any, name: Any) -> RegisteredModel:
    """The registered model prepared for output: tags, aliases and latest versions."""
    name = validation.require_string(name, "name")
    try:
        registered_model = _registered_model_queryset().get(name=name)
    except RegisteredModel.DoesNotExist:
        raise RegistryError.not_found(f"Registered Model with name={name} not found") from None
    _readable(actor, registered_model)
    _with_model_tags_and_aliases([registered_model])
    _attach_latest_versions([registered_model])
    return registered_model


def _search_page(
    queryset: QuerySet[Any],
    *,
    entity: search.Entity,
    filter_string: str | None,
    max_results: Any,
    order_by: list[str] | None,
    page_token: str | None,
    default_max_results: int,
    max_max_results: int,
    extra_clauses: Sequence[search.Clause] = (),
) -> tuple[list[Any], str]:
    """One page of ``queryset`` under the protocol's filter, order and paging rules, and the
    token of the next page ("" on the last)."""
    clauses = [*search.parse_filter(filter_string, entity=entity), *extra_clauses]
    ordering = search.parse_order_by(order_by, entity=entity)
    return paging.paginate(
        queryset.filter(search.filter_q(clauses, entity=entity)).order_by(*ordering),
        max_results=max_results,
        page_token=page_token,
        default=default_max_results,
        maximum=max_max_results,
        keyset=ordering,
    )


def _structured_clauses(
    name_contains: str | None, tag_key: str | None, tag_value: str | None
) -> list[search.Clause]:
    """The clauses of :func:`registered_model_search`'s structured arguments: what a filter
    string would give, with nothing to quote or parse."""
    clauses = []
    if name_contains:
        literal = name_contains.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        clauses.append(search.Clause("attribute", "name", "ILIKE", f"%{literal}%"))
    if tag_key is not None:
        if not tag_key:
            raise RegistryError.invalid("The tag key to search for must not be empty.")
        if tag_value is None:
            clauses.append(search.Clause("tag", tag_key, "LIKE", "%"))
        else:
            clauses.append(search.Clause("tag", tag_key, "=", tag_value))
    return clauses


def registered_model_search(
    *,
    actor: Any,
    filter_string: str | None = None,
    max_results: Any = None,
    order_by: list[str] | None = None,
    page_token: str | None = None,
    name_contains: str | None = None,
    tag_key: str | None = None,
    tag_value: str | None = None,
) -> tuple[list[RegisteredModel], str]:
    """One page of registered models and the token of the next page ("" on the last).

    Besides ``filter_string``, the models can be narrowed by parts (the web UI's search form):
    ``name_contains`` (matched literally, ignoring case) and ``tag_key`` (the models with that
    tag; with ``tag_value``, with that value)."""
    page, next_token = _search_page(
        _registered_model_queryset().filter(permissions.readable_models_q(actor)),
        entity="registered_model",
        filter_string=filter_string,
        max_results=max_results,
        order_by=order_by,
        page_token=page_token,
        default_max_results=MAX_RESULTS_REGISTERED_MODELS_DEFAULT,
        max_max_results=settings.REGISTRY["MAX_RESULTS_REGISTERED_MODELS"],
        extra_clauses=_structured_clauses(name_contains, tag_key, tag_value),
    )
    _with_model_tags_and_aliases(page)
    _attach_latest_versions(page)
    return page, next_token


def model_version_get(*, actor: Any, name: Any, version: Any) -> ModelVersion:
    """A version prepared for output (tags, aliases), if the actor may read its model."""
    name = validation.require_string(name, "name")
    number = validation.version_number(version)
    # The usual case, the version exists: fetched with its model in one query, and shown only
    # once the model's permission passed. Otherwise the model alone decides 404 or 403 first.
    model_version = (
        _model_version_queryset().filter(registered_model__name=name, version=number).first()
    )
    if model_version is not None:
        _readable(actor, model_version.registered_model)
        return _with_tags_and_aliases([model_version])[0]
    registered_model_get(actor=actor, name=name)
    raise RegistryError.not_found(f"Model Version (name={name}, version={number}) not found")


def model_version_get_by_alias(*, actor: Any, name: Any, alias: Any) -> ModelVersion:
    """The version an alias points at; ``latest`` (any case) is the highest version."""
    name = validation.require_string(name, "name")
    alias = validation.alias_name(alias, for_set=False)
    queryset = _model_version_queryset().filter(registered_model__name=name)
    is_latest = alias.lower() == "latest"
    if is_latest:
        model_version = queryset.order_by("-version").first()
    else:
        # The alias row by its unique (model, alias) key, so the lookup is one index probe
        # rather than a scan of every alias of that name across the registry.
        model_version = queryset.filter(
            pk__in=RegisteredModelAlias.objects.filter(
                registered_model__name=name, alias=alias
            ).values("model_version_id")
        ).first()
    if model_version is not None:
        # As in model_version_get: nothing is shown before the model's permission passed.
        _readable(actor, model_version.registered_model)
        return _with_tags_and_aliases([model_version])[0]
    registered_model_get(actor=actor, name=name)
    if is_latest:
        raise RegistryError.invalid(f"Registered model '{name}' has no versions.")
    # The reference server answers 400 here, not 404; clients match on the message.
    raise RegistryError.invalid(f"Registered model alias {alias} not found.")


def model_version_latest(*, actor: Any, name: Any, stages: Any = None) -> list[ModelVersion]:
    """The highest version in each requested stage (all four when none is given)."""
    name = validation.require_string(name, "name")
    wanted = validation.stages(stages) or list(Stage)
    registered_model = registered_model_get(actor=actor, name=name)
    latest = (
        ModelVersion.objects.filter(registered_model=registered_model, current_stage__in=wanted)
        .values("current_stage")
        .annotate(version=Max("version"))
        .values_list("version", flat=True)
    )
    return _with_tags_and_aliases(
        list(
            _model_version_queryset()
            .filter(registered_model=registered_model, version__in=list(latest))
            .order_by("version")
        )
    )


def model_version_search(
    *,
    actor: Any,
    filter_string: str | None = None,
    max_results: Any = None,
    order_by: list[str] | None = None,
    page_token: str | None = None,
) -> tuple[list[ModelVersion], str]:
    """One page of model versions and the token of the next page ("" on the last)."""
    page, next_token = _search_page(
        _model_version_queryset().filter(
            permissions.readable_models_q(actor, model_field="registered_model_id")
        ),
        entity="model_version",
        filter_string=filter_string,
        max_results=max_results,
        order_by=order_by,
        page_token=page_token,
        default_max_results=MAX_RESULTS_MODEL_VERSIONS_DEFAULT,
        max_max_results=settings.REGISTRY["MAX_RESULTS_MODEL_VERSIONS"],
    )
    return _with_tags_and_aliases(page), next_token


def model_version_download_uri(
    *, actor: Any, name: Any, version: Any, artifacts_base_url: str
) -> str:
    """The absolute URL of the version's managed copy under the service's artifact endpoints
    (``artifacts_base_url`` is ``http(s)://<host>/api/2.0/mlflow-artifacts/artifacts``), so
    clients need no storage credentials. Only READY versions have one. A reference's is its
    ``storage_location``, which the client reads itself."""
    model_version = model_version_get(actor=actor, name=name, version=version)
    if model_version.is_reference:
        # Reference mode: the source is where the files are, as mlflow server answers.
        return model_version.storage_location
    if model_version.status != ModelVersionStatus.READY:
        raise RegistryError.invalid(
            f"Model version {model_version.version} of '{model_version.registered_model.name}' "
            f"is {model_version.status}: its artifacts are not available"
            + (f" ({model_version.status_message})." if model_version.status_message else " yet.")
        )
    return f"{artifacts_base_url.rstrip('/')}/{version_folder(model_version)}"


# --- Approval workflow ----------------------------------------------------------------------


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
    merged.required_approvals = max(own.required_approvals, floor.required_approvals)
    merged.allow_self_approval = own.allow_self_approval and floor.allow_self_approval
    merged.allow_direct_transition = own.allow_direct_transition and floor.allow_direct_transition
    merged.required_version_tags = {**own.required_version_tags, **floor.required_version_tags}
    ttls = [ttl for ttl in (own.request_ttl, floor.request_ttl) if ttl is not None]
    merged.request_ttl = min(ttls) if ttls else None
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


def transition_requests_open(*, actor: Any, name: Any, version: Any) -> list[TransitionRequest]:
    model_version = model_version_get(actor=actor, name=name, version=version)
    return list(
        model_version.transition_requests.filter(status=TransitionRequestStatus.OPEN)
        .select_related("model_version__registered_model")
        .prefetch_related("approvals")
        .order_by("created_at", "id")
    )


def model_version_activities(*, actor: Any, name: Any, version: Any) -> list[Activity]:
    """The version's whole trail, oldest first, also once the version is deleted (the trail
    then ends with the deletion).

    ``name`` is the model's name now: whoever may read that model reads the trails of its
    versions, deleted or not (a version is found by its model and number, never reused). Once
    the model is deleted too, its grants are gone with it, so only registry admins read its
    versions' trails, by the name it had when it was deleted (the most recently deleted model
    of that name); to anyone else the name does not exist, as before.
    """
    name = validation.require_string(name, "name")
    number = validation.version_number(version)
    registered_model = RegisteredModel.objects.filter(name=name).first()
    model_id: int | None
    if registered_model is not None:
        _readable(actor, registered_model)
        model_id = registered_model.pk
    elif permissions.is_admin(actor):
        model_id = (
            Activity.objects.filter(
                model_name=name, version=number, activity_type=ActivityType.DELETED_MODEL_VERSION
            )
            .exclude(registered_model_id__in=RegisteredModel.objects.values("pk"))
            .order_by("-created_at", "-id")
            .values_list("registered_model_id", flat=True)
            .first()
        )
        if model_id is None:
            raise RegistryError.not_found(
                f"Model Version (name={name}, version={number}) not found"
            )
    else:
        raise RegistryError.not_found(f"Registered Model with name={name} not found")
    trail = list(
        Activity.objects.filter(registered_model_id=model_id, version=number).order_by(
            "created_at", "id"
        )
    )
    if not trail and (
        registered_model is None or not registered_model.versions.filter(version=number).exists()
    ):
        raise RegistryError.not_found(f"Model Version (name={name}, version={number}) not found")
    return trail


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
    actions = []
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


def comment_available_actions(
    actor: Any, comment: Comment, *, level: Level | None = None
) -> list[str]:
    """What the caller may do with a comment, by the rules the services refuse with. ``level``
    (the actor's on the comment's model) may be passed in when it is already known, so a list
    of comments costs no query per row."""
    actions = ["EDIT_COMMENT"] if permissions.can_edit_comment(actor, comment) else []
    if level is None:
        # The author deletes at any level, so their level (a query) is only read for others.
        level = (
            Level.NONE
            if actions
            else permissions.effective_level(actor, comment.model_version.registered_model)
        )
    if permissions.can_delete_comment(actor, comment, level):
        actions.append("DELETE_COMMENT")
    return actions


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


# --- Reads of the web UI's pages ------------------------------------------------------------
# The actor's permission to read was checked by the selector that gave the model or version.


def model_versions_newest(*, registered_model: RegisteredModel, limit: int) -> list[ModelVersion]:
    """The model's newest versions, with who created them."""
    return list(registered_model.versions.select_related("created_by").order_by("-version")[:limit])


def model_version_comments(*, model_version: ModelVersion, limit: int) -> list[Comment]:
    """The version's first comments, oldest first."""
    return list(
        Comment.objects.filter(model_version=model_version)
        .select_related("model_version__registered_model")
        .order_by("created_at", "id")[:limit]
    )


def transition_request_by_code(
    *, model_version: ModelVersion, code: Any
) -> TransitionRequest | None:
    """The version's request with this id, whatever its status; None if it has none."""
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
