"""Every change to the registry goes through one of these functions (docs/architecture.md,
"Layers").

Each takes the acting user first (``actor=``) and keyword-only arguments, validates its input,
and does its writes in one transaction. Changes of stage for one registered model serialise on
that model's row lock, and write the activity trail in the same transaction. Every function
asks ``accounts.permissions`` first, so the API, the UI, the admin and Celery tasks all obey the
same rules. Lookups answer 404 for a model that does not exist and 403 for one the actor may not
act on, before looking any further.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts import permissions
from accounts import services as accounts_services
from accounts.models import User
from accounts.permissions import Level
from kernel.errors import ErrorCode, RegistryError
from registry import validation
from registry.artifacts import services as artifact_services
from registry.artifacts import sources as artifact_sources
from registry.models import (
    Activity,
    ActivityType,
    AuditEntry,
    Comment,
    ModelVersion,
    ModelVersionStatus,
    ModelVersionTag,
    RegisteredModel,
    RegisteredModelAlias,
    RegisteredModelTag,
    Stage,
    StagePolicy,
    TransitionApproval,
    TransitionRequest,
    TransitionRequestStatus,
)
from registry.selectors import (
    gate_tag_keepers,
    model_version_by_number,
    model_version_get,
    model_version_get_by_alias,
    model_version_latest,
    registered_model_by_name,
    stage_policies_effective,
    stage_policy_effective,
)
from webhooks.models import EventType
from webhooks.services.outbox import webhook_event_emit


def _lock_registered_model(name: str) -> RegisteredModel:
    """The registered model, locked FOR UPDATE until the end of the current transaction."""
    try:
        return RegisteredModel.objects.select_for_update().get(name=name)
    except RegisteredModel.DoesNotExist:
        raise RegistryError.not_found(f"Registered Model with name={name} not found") from None


def _lock_model_version(
    name: str, version: int, *, actor: User | None, level: Level | None, action: str
) -> tuple[RegisteredModel, ModelVersion]:
    """The locked model (after checking ``level`` on it, unless None) and its version."""
    registered_model = _lock_registered_model(name)
    if level is not None:
        permissions.require_level(actor, registered_model, level, action=action)
    try:
        model_version = registered_model.versions.get(version=version)
    except ModelVersion.DoesNotExist:
        raise RegistryError.not_found(
            f"Model Version (name={name}, version={version}) not found"
        ) from None
    model_version.registered_model = registered_model
    return registered_model, model_version


def _actor_or_none(actor: User | None) -> User | None:
    return actor if actor is not None and actor.is_authenticated else None


# --- Registered models ------------------------------------------------------------------------


def registered_model_create(
    *,
    actor: User | None,
    name: Any,
    description: Any = None,
    tags: Any = None,
) -> RegisteredModel:
    permissions.require_can_create_registered_model(actor)
    name = validation.model_name(name)
    description = validation.description(description)
    cleaned_tags = validation.tags(tags)
    now = timezone.now()
    try:
        with transaction.atomic():
            registered_model = RegisteredModel.objects.create(
                name=name,
                description=description,
                created_by=_actor_or_none(actor),
                created_at=now,
                updated_at=now,
            )
            RegisteredModelTag.objects.bulk_create(
                RegisteredModelTag(registered_model=registered_model, key=key, value=value)
                for key, value in cleaned_tags
            )
            accounts_services.registered_model_grant_creator(
                registered_model=registered_model, actor=actor
            )
            webhook_event_emit(
                event=EventType.REGISTERED_MODEL_CREATED,
                registered_model=registered_model,
                payload_data={"tags": dict(cleaned_tags), "description": description},
                actor=actor,
            )
    except IntegrityError:
        # The unique constraint on the name decides races between two creators.
        raise RegistryError.already_exists(
            f"Registered Model (name={name}) already exists."
        ) from None
    return registered_model


def registered_model_rename(*, actor: User | None, name: Any, new_name: Any) -> RegisteredModel:
    name = validation.require_string(name, "name")
    new_name = validation.model_name(new_name, "new_name")
    now = timezone.now()
    try:
        with transaction.atomic():
            registered_model = _lock_registered_model(name)
            permissions.require_level(actor, registered_model, Level.CAN_MANAGE, action="rename")
            if new_name == name:
                return registered_model
            registered_model.name = new_name
            registered_model.updated_at = now
            registered_model.save(update_fields=["name", "updated_at"])
            registered_model.versions.update(updated_at=now)
    except IntegrityError:
        raise RegistryError.already_exists(
            f"Registered Model (name={new_name}) already exists."
        ) from None
    return registered_model


def registered_model_update(
    *, actor: User | None, name: Any, description: Any = None
) -> RegisteredModel:
    name = validation.require_string(name, "name")
    description = validation.description(description)
    with transaction.atomic():
        registered_model = _lock_registered_model(name)
        permissions.require_level(
            actor, registered_model, Level.CAN_EDIT, action="edit the description of"
        )
        registered_model.description = description
        registered_model.updated_at = timezone.now()
        registered_model.save(update_fields=["description", "updated_at"])
    return registered_model


def registered_model_delete(*, actor: User | None, name: Any) -> None:
    """Delete a model and its versions. The versions' trails stay (they hold no foreign key)
    and each ends with the deletion; the model's deletion is audited and is a webhook event
    (for registry-wide hooks: the model's own hooks go with it)."""
    name = validation.require_string(name, "name")
    with transaction.atomic():
        registered_model = _lock_registered_model(name)
        permissions.require_level(actor, registered_model, Level.CAN_MANAGE, action="delete")
        now = timezone.now()
        versions = list(registered_model.versions.values_list("pk", "version", "current_stage"))
        author = _actor_or_none(actor)
        Activity.objects.bulk_create(
            (
                Activity(
                    model_version_id=pk,
                    registered_model=registered_model,
                    model_name=registered_model.name,
                    version=number,
                    activity_type=ActivityType.DELETED_MODEL_VERSION,
                    from_stage=stage,
                    system_comment=f"Deleted with registered model '{registered_model.name}'.",
                    actor=author,
                    actor_username=author.get_username() if author else "",
                    created_at=now,
                )
                for pk, number, stage in versions
            ),
            batch_size=1000,
        )
        AuditEntry.objects.create(
            action=AuditEntry.Action.REGISTERED_MODEL_DELETED,
            model_name=registered_model.name,
            model_code=registered_model.code,
            detail={"versions": len(versions)},
            actor_username=author.get_username() if author else "",
            created_at=now,
        )
        webhook_event_emit(
            event=EventType.REGISTERED_MODEL_DELETED,
            registered_model=registered_model,
            actor=actor,
        )
        artifact_services.artifacts_delete_schedule(
            folder=artifact_services.model_folder(registered_model)
        )
        registered_model.delete()


def registered_model_tag_set(*, actor: User | None, name: Any, key: Any, value: Any) -> None:
    name = validation.require_string(name, "name")
    key = validation.tag_key(key)
    value = validation.tag_value(value)
    registered_model = registered_model_by_name(name)
    permissions.require_level(actor, registered_model, Level.CAN_EDIT, action="edit the tags of")
    RegisteredModelTag.objects.update_or_create(
        registered_model=registered_model, key=key, defaults={"value": value}
    )


def registered_model_tag_delete(*, actor: User | None, name: Any, key: Any) -> None:
    name = validation.require_string(name, "name")
    key = validation.tag_key(key)
    registered_model = registered_model_by_name(name)
    permissions.require_level(actor, registered_model, Level.CAN_EDIT, action="edit the tags of")
    RegisteredModelTag.objects.filter(registered_model=registered_model, key=key).delete()


# --- Aliases ----------------------------------------------------------------------------------


def registered_model_alias_set(
    *, actor: User | None, name: Any, alias: Any, version: Any
) -> RegisteredModelAlias:
    name = validation.require_string(name, "name")
    alias = validation.alias_name(alias, for_set=True)
    number = validation.version_number(version)
    with transaction.atomic():
        registered_model, model_version = _lock_model_version(
            name, number, actor=actor, level=Level.CAN_EDIT, action="edit the aliases of"
        )
        # The model row lock serialises alias writers, so this upsert cannot race.
        registered_model_alias, _ = RegisteredModelAlias.objects.update_or_create(
            registered_model=registered_model,
            alias=alias,
            defaults={"model_version": model_version},
        )
        webhook_event_emit(
            event=EventType.MODEL_VERSION_ALIAS_CREATED,
            registered_model=registered_model,
            model_version=model_version,
            payload_data={"alias": alias},
            actor=actor,
        )
    return registered_model_alias


def registered_model_alias_delete(*, actor: User | None, name: Any, alias: Any) -> None:
    name = validation.require_string(name, "name")
    alias = validation.alias_name(alias, for_set=False)
    registered_model = registered_model_by_name(name)
    permissions.require_level(actor, registered_model, Level.CAN_EDIT, action="edit the aliases of")
    with transaction.atomic():
        deleted, _ = RegisteredModelAlias.objects.filter(
            registered_model=registered_model, alias=alias
        ).delete()
        if deleted:
            webhook_event_emit(
                event=EventType.MODEL_VERSION_ALIAS_DELETED,
                registered_model=registered_model,
                payload_data={"alias": alias},
                actor=actor,
            )


# --- Model versions ---------------------------------------------------------------------------


def _version_to_copy(actor: User | None, ref: artifact_sources.RegistryVersionRef) -> ModelVersion:
    """The version a ``models:/<name>/...`` source names, if the actor may read its model."""
    if ref.version is not None:
        return model_version_get(actor=actor, name=ref.name, version=ref.version)
    if ref.alias is not None or (ref.stage or "").lower() == "latest":
        return model_version_get_by_alias(actor=actor, name=ref.name, alias=ref.alias or "latest")
    found = model_version_latest(actor=actor, name=ref.name, stages=[ref.stage])
    if not found:
        raise RegistryError.invalid(
            f"No versions of model with name '{ref.name}' and stage '{ref.stage}' found."
        )
    return found[0]


def model_version_create(
    *,
    actor: User | None,
    name: Any,
    source: Any,
    run_id: Any = None,
    run_link: Any = None,
    description: Any = None,
    tags: Any = None,
    model_id: Any = None,
) -> ModelVersion:
    """A new version of an existing registered model, numbered one past the highest ever given.

    Where its files come from (docs/architecture.md, "Artifacts"): a copy into the store, made
    by a task queued on commit (the version is PENDING_REGISTRATION until then), or, for a
    reference, nowhere (READY at once; the source is where the files are). A copy of another
    version (``models:/<name>/<version|@alias|stage>``, what ``copy_model_version`` sends) needs
    CAN_READ on that model, is recorded as ``models:/<name>/<version>``, and keeps the kind of
    the version it copies: a managed copy is copied again (same digest), a reference stays one.
    """
    name = validation.require_string(name, "name")
    source = validation.source(source)
    run_id = validation.run_id(run_id)
    run_link = validation.run_link(run_link)
    description = validation.description(description)
    model_id = validation.model_id(model_id)
    cleaned_tags = validation.tags(tags, key=validation.version_tag_key)
    copy_of = artifact_sources.registry_version_ref(source)
    if copy_of is None:
        reference = artifact_sources.is_reference(source)
        artifact_sources.validate_source(source, actor=actor, reference=reference)
        storage_location = source if reference else ""
        logged_model = artifact_sources.logged_model_id(source)
        if logged_model is not None:
            if model_id and model_id != logged_model:
                raise RegistryError.invalid(
                    f"model_id '{model_id}' does not match the source '{source}'."
                )
            model_id = logged_model
    now = timezone.now()
    with transaction.atomic():
        copied_from = None
        if copy_of is not None:
            copied_from = _version_to_copy(actor, copy_of)
            source = f"models:/{copied_from.registered_model.name}/{copied_from.version}"
            storage_location = copied_from.storage_location
            if copied_from.status != ModelVersionStatus.READY:
                raise RegistryError.invalid(
                    f"Cannot copy {source}: it is {copied_from.status}; versions are copied "
                    "once they are READY."
                )
        # Under the row lock this read-modify-write cannot race with another creator.
        registered_model = _lock_registered_model(name)
        permissions.require_level(
            actor, registered_model, Level.CAN_EDIT, action="create versions of"
        )
        if copied_from is None:
            _check_gate_tags(
                actor=actor,
                registered_model=registered_model,
                current_stage=Stage.NONE,
                keys={key for key, _ in cleaned_tags},
            )
        else:
            # mlflow's copy_model_version sends every tag of the version it copies. Gate tags
            # the copier may not set here stay behind (docs/architecture.md, "The approval
            # workflow"): the copy is certified again in this model, like any new version,
            # and the copy itself is not refused.
            cleaned_tags = [
                (key, value)
                for key, value in cleaned_tags
                if _may_set_gate_tag(actor, registered_model, key)
            ]
        registered_model.last_version_number += 1
        registered_model.updated_at = now
        registered_model.save(update_fields=["last_version_number", "updated_at"])
        model_version = ModelVersion.objects.create(
            registered_model=registered_model,
            version=registered_model.last_version_number,
            source=source,
            run_id=run_id,
            run_link=run_link,
            description=description,
            model_id=model_id,
            storage_location=storage_location,
            copied_from=copied_from,
            # A copy makes the version READY, queued on commit; a reference has nothing to copy.
            status=(
                ModelVersionStatus.READY
                if storage_location
                else ModelVersionStatus.PENDING_REGISTRATION
            ),
            created_by=_actor_or_none(actor),
            created_at=now,
            updated_at=now,
        )
        ModelVersionTag.objects.bulk_create(
            ModelVersionTag(model_version=model_version, key=key, value=value)
            for key, value in cleaned_tags
        )
        webhook_event_emit(
            event=EventType.MODEL_VERSION_CREATED,
            registered_model=registered_model,
            model_version=model_version,
            payload_data={
                "source": source,
                "run_id": run_id,
                "tags": dict(cleaned_tags),
                "description": description,
            },
            actor=actor,
        )
        if not model_version.is_reference:
            artifact_services.model_version_copy_schedule(model_version=model_version)
    return model_version


def model_version_update(
    *, actor: User | None, name: Any, version: Any, description: Any = None
) -> ModelVersion:
    name = validation.require_string(name, "name")
    number = validation.version_number(version)
    description = validation.description(description)
    model_version = model_version_by_number(name, number)
    permissions.require_level(
        actor, model_version.registered_model, Level.CAN_EDIT, action="edit versions of"
    )
    model_version.description = description
    model_version.updated_at = timezone.now()
    model_version.save(update_fields=["description", "updated_at"])
    return model_version


def model_version_delete(*, actor: User | None, name: Any, version: Any) -> None:
    """Delete a version: its tags, aliases, requests, approvals and comments go with it; its
    trail stays (no foreign key to cascade through) and ends with the deletion, which is also a
    webhook event. The number stays used, so the trail keeps naming this version only."""
    name = validation.require_string(name, "name")
    number = validation.version_number(version)
    with transaction.atomic():
        registered_model, model_version = _lock_model_version(
            name, number, actor=actor, level=Level.CAN_MANAGE, action="delete versions of"
        )
        now = timezone.now()  # after the lock: the trail's order is the lock's
        _record_activity(
            actor=actor,
            model_version=model_version,
            activity_type=ActivityType.DELETED_MODEL_VERSION,
            from_stage=model_version.current_stage,
            at=now,
        )
        webhook_event_emit(
            event=EventType.MODEL_VERSION_DELETED,
            registered_model=registered_model,
            model_version=model_version,
            payload_data={"from_stage": model_version.current_stage},
            actor=actor,
        )
        if not model_version.is_reference:
            artifact_services.artifacts_delete_schedule(
                folder=artifact_services.version_folder(model_version)
            )
        model_version.delete()
        registered_model.updated_at = now
        registered_model.save(update_fields=["updated_at"])


def model_version_registration_retry(
    *, actor: User | None, name: Any, version: Any
) -> ModelVersion:
    """Put a ``FAILED_REGISTRATION`` version back to ``PENDING_REGISTRATION`` and queue its
    copy again, once the cause (the store down past the retry window, a source put back) is
    fixed. Needs ``CAN_EDIT``, the right that created the version from the same source.

    The source is validated again (the settings that allowed it may have changed), for the
    caller: files uploaded to the registry are registered again only by the user who uploaded
    them, since the retry copies what their area holds now. The copy
    starts a fresh retry window; the version's number, tags, aliases and trail stay as they
    were. Versions that are pending or ready are refused: a pending one is already being
    copied, and a ready one's copy never changes.
    """
    name = validation.require_string(name, "name")
    number = validation.version_number(version)
    with transaction.atomic():
        registered_model, model_version = _lock_model_version(
            name,
            number,
            actor=actor,
            level=Level.CAN_EDIT,
            action="retry the registration of versions of",
        )
        if model_version.status != ModelVersionStatus.FAILED_REGISTRATION:
            raise RegistryError.invalid(
                f"Model version {number} of '{name}' is {model_version.status}: only "
                "FAILED_REGISTRATION versions can retry their registration."
            )
        if artifact_sources.registry_version_ref(model_version.source) is None:
            artifact_sources.validate_source(model_version.source, actor=actor)
        elif model_version.copied_from_id is None:
            # A copy of another version reads that version's copy, whatever the settings;
            # with that version deleted there is nothing left to copy.
            raise RegistryError.invalid(
                f"Model version {number} of '{name}' copies {model_version.source}, which was "
                "deleted: register the files again from another source."
            )
        now = timezone.now()
        failure = model_version.status_message
        # Conditional, like every other change of status (the copy task's claims).
        ModelVersion.objects.filter(
            pk=model_version.pk, status=ModelVersionStatus.FAILED_REGISTRATION
        ).update(status=ModelVersionStatus.PENDING_REGISTRATION, status_message="", updated_at=now)
        model_version.status = ModelVersionStatus.PENDING_REGISTRATION
        model_version.status_message = ""
        model_version.updated_at = now
        actor = _actor_or_none(actor)
        AuditEntry.objects.create(
            action=AuditEntry.Action.MODEL_VERSION_REGISTRATION_RETRIED,
            model_name=registered_model.name,
            model_code=registered_model.code,
            detail={
                "version": number,
                "source": model_version.source,
                "previous_status_message": failure[:2000],
            },
            actor_username=actor.get_username() if actor else "",
            created_at=now,
        )
        artifact_services.model_version_copy_schedule(model_version=model_version)
    return model_version


def model_version_tag_set(
    *, actor: User | None, name: Any, version: Any, key: Any, value: Any
) -> None:
    name = validation.require_string(name, "name")
    number = validation.version_number(version)
    key = validation.version_tag_key(key)
    value = validation.tag_value(value)
    model_version = model_version_by_number(name, number)
    permissions.require_level(
        actor, model_version.registered_model, Level.CAN_EDIT, action="edit version tags of"
    )
    _check_gate_tags(
        actor=actor,
        registered_model=model_version.registered_model,
        current_stage=model_version.current_stage,
        keys={key},
    )
    with transaction.atomic():
        ModelVersionTag.objects.update_or_create(
            model_version=model_version, key=key, defaults={"value": value}
        )
        webhook_event_emit(
            event=EventType.MODEL_VERSION_TAG_SET,
            registered_model=model_version.registered_model,
            model_version=model_version,
            payload_data={"key": key, "value": value},
            actor=actor,
        )


def model_version_tag_delete(*, actor: User | None, name: Any, version: Any, key: Any) -> None:
    name = validation.require_string(name, "name")
    number = validation.version_number(version)
    key = validation.version_tag_key_to_delete(key)
    model_version = model_version_by_number(name, number)
    permissions.require_level(
        actor, model_version.registered_model, Level.CAN_EDIT, action="edit version tags of"
    )
    _check_gate_tags(
        actor=actor,
        registered_model=model_version.registered_model,
        current_stage=model_version.current_stage,
        keys={key},
    )
    with transaction.atomic():
        deleted, _ = ModelVersionTag.objects.filter(model_version=model_version, key=key).delete()
        if deleted:
            webhook_event_emit(
                event=EventType.MODEL_VERSION_TAG_DELETED,
                registered_model=model_version.registered_model,
                model_version=model_version,
                payload_data={"key": key},
                actor=actor,
            )


def _may_set_gate_tag(actor: User | None, registered_model: RegisteredModel, key: str) -> bool:
    try:
        _check_gate_tags(
            actor=actor, registered_model=registered_model, current_stage=Stage.NONE, keys={key}
        )
    except RegistryError:
        return False
    return True


def _check_gate_tags(
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
    if not keys or permissions.is_admin(actor):
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
                        raise _policy_refusal(
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
                    raise _policy_refusal(
                        keeper,
                        registered_model,
                        f"{gate}, which only those who may approve moves into {stage} "
                        f"({needed.name}) may set or delete, as the policy names no "
                        f"gate_tag_groups; {actor.get_username()} has {level.name}.",
                    )


def _record_activity(
    *,
    actor: User | None,
    model_version: ModelVersion,
    activity_type: ActivityType,
    at: Any,
    from_stage: str = "",
    to_stage: str = "",
    comment: str = "",
    system_comment: str = "",
    request: TransitionRequest | None = None,
) -> Activity:
    actor = _actor_or_none(actor)
    return Activity.objects.create(
        model_version=model_version,
        registered_model=model_version.registered_model,
        model_name=model_version.registered_model.name,
        version=model_version.version,
        activity_type=activity_type,
        from_stage=from_stage,
        to_stage=to_stage,
        comment=comment,
        system_comment=system_comment,
        request=request,
        actor=actor,
        actor_username=actor.get_username() if actor else "",
        created_at=at,
    )


def _policy_refusal(
    policy: StagePolicy, registered_model: RegisteredModel, rule: str
) -> RegistryError:
    if policy.registered_model_id is None:
        scope = f"the registry-wide {policy.stage} stage policy"
    elif getattr(policy, "floor", None) is not None:
        scope = (
            f"the {policy.stage} stage policy of model '{registered_model.name}' with the "
            "registry-wide one as its floor"
        )
    else:
        scope = f"the {policy.stage} stage policy of model '{registered_model.name}'"
    return RegistryError(ErrorCode.PERMISSION_DENIED, f"Refused by {scope}: {rule}")


def _check_required_tags(
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
            raise _policy_refusal(
                policy,
                registered_model,
                f"required_version_tags needs {key}={value} on version {model_version.version} "
                f"({have})" + (f", so {why} may not archive it." if why else "."),
            )


def _apply_stage_change(
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
    closes the open requests the move made moot. The caller holds the model's row lock and has
    checked permissions and policy.
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
    archived = _archive_others(
        actor=actor, model_version=model_version, others=others, stage=target, at=at
    )
    from_stage = model_version.current_stage
    model_version.current_stage = target
    model_version.updated_at = at
    model_version.save(update_fields=["current_stage", "updated_at"])
    registered_model.updated_at = at
    registered_model.save(update_fields=["updated_at"])
    activity = _record_activity(
        actor=actor,
        model_version=model_version,
        activity_type=activity_type,
        from_stage=from_stage,
        to_stage=target,
        comment=comment,
        request=request,
        at=at,
    )
    webhook_event_emit(
        event=EventType.MODEL_VERSION_TRANSITIONED_STAGE,
        registered_model=registered_model,
        model_version=model_version,
        payload_data={"from_stage": from_stage, "to_stage": target, "comment": comment},
        actor=actor,
    )
    for moved in [model_version, *archived]:
        _close_moot_requests(model_version=moved, at=at, except_request=request)
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
        raise _policy_refusal(
            policy,
            registered_model,
            f"allow_direct_transition is off, so archive_existing_versions may not archive "
            f"{which} (in {stage}) when version {moved.version} moves there: move without "
            "archiving, or have the moves to Archived approved by request first.",
        )
    for other in others:
        other.registered_model = registered_model
        _check_required_tags(policy, registered_model, other, why="archive_existing_versions")


def _archive_others(
    *,
    actor: User | None,
    model_version: ModelVersion,
    others: list[ModelVersion],
    stage: Stage,
    at: Any,
) -> list[ModelVersion]:
    for other in others:
        other.registered_model = model_version.registered_model
        _record_activity(
            actor=actor,
            model_version=other,
            activity_type=ActivityType.SYSTEM_TRANSITION,
            from_stage=other.current_stage,
            to_stage=Stage.ARCHIVED,
            system_comment=f"Archived when version {model_version.version} moved to {stage}.",
            at=at,
        )
        webhook_event_emit(
            event=EventType.MODEL_VERSION_TRANSITIONED_STAGE,
            registered_model=model_version.registered_model,
            model_version=other,
            payload_data={"from_stage": other.current_stage, "to_stage": Stage.ARCHIVED},
            actor=actor,
        )
        other.current_stage = Stage.ARCHIVED
    ModelVersion.objects.filter(pk__in=[other.pk for other in others]).update(
        current_stage=Stage.ARCHIVED, updated_at=at
    )
    return others


def _close_moot_requests(
    *, model_version: ModelVersion, at: Any, except_request: TransitionRequest | None
) -> None:
    """Open requests to move a version into the stage it is now in have nothing left to do."""
    moot = model_version.transition_requests.filter(
        status=TransitionRequestStatus.OPEN, to_stage=model_version.current_stage
    )
    if except_request is not None:
        moot = moot.exclude(pk=except_request.pk)
    for request in moot:
        _record_activity(
            actor=None,
            model_version=model_version,
            activity_type=ActivityType.CANCELLED_REQUEST,
            from_stage=request.from_stage,
            to_stage=request.to_stage,
            system_comment=(
                f"Closed: version {model_version.version} reached {request.to_stage} "
                "another way, so the request has nothing left to do."
            ),
            request=request,
            at=at,
        )
    moot.update(status=TransitionRequestStatus.SUPERSEDED, closed_at=at)


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
    _check_archive_target(archive, target)
    with transaction.atomic():
        # The level a move needs depends on the stage the version is in: checked just below.
        registered_model, model_version = _lock_model_version(
            name, number, actor=actor, level=None, action=""
        )
        permissions.require_can_transition(
            actor, registered_model, model_version.current_stage, target
        )
        policy = stage_policy_effective(registered_model=registered_model, stage=target)
        if not policy.allow_direct_transition:
            raise _policy_refusal(
                policy,
                registered_model,
                "allow_direct_transition is off: create a transition request and have it approved.",
            )
        _check_required_tags(policy, registered_model, model_version)
        _apply_stage_change(
            actor=actor,
            registered_model=registered_model,
            model_version=model_version,
            target=target,
            archive_existing_versions=archive,
            activity_type=ActivityType.APPLIED_TRANSITION,
            comment=comment,
            at=timezone.now(),
        )
    return model_version


def _check_archive_target(archive: bool, target: Stage) -> None:
    if archive and target not in validation.ACTIVE_STAGES:
        raise RegistryError.invalid(
            "Model version transition cannot archive existing model versions because "
            f"'{target}' is not an Active stage. Valid stages are ['Staging', 'Production']"
        )


# --- Transition requests (the approval workflow) -------------------------------------------

COMMENT_MAX_LENGTH = 65_535


def _request_code(request_id: Any) -> uuid.UUID | None:
    """The optional ``request_id`` of a decision: the ``id`` transition-requests/list gives."""
    if request_id is None or request_id == "":
        return None
    try:
        return uuid.UUID(str(request_id))
    except ValueError:
        raise RegistryError.invalid(
            f"Parameter 'request_id' must be the id of a transition request, as "
            f"transition-requests/list returns it; got '{str(request_id)[:80]}'."
        ) from None


def _open_request(
    model_version: ModelVersion,
    stage: Stage,
    *,
    creator: str | None = None,
    request_code: uuid.UUID | None = None,
) -> TransitionRequest:
    """The open request to move ``model_version`` to ``stage`` (by ``creator``, if named).

    Model, version and stage name a request as Databricks' API does, so between reading a
    request and deciding it, a rename (another model now holding the name) or a request
    decided and made again could put another request behind the same names. With
    ``request_code`` (the id the decider read) the decision applies to that request or to none.
    """
    requests = model_version.transition_requests.filter(
        status=TransitionRequestStatus.OPEN, to_stage=stage
    )
    if creator is not None:
        requests = requests.filter(requested_by_username=creator)
    request = requests.first()
    where = (
        f"to move version {model_version.version} of '{model_version.registered_model.name}' "
        f"to {stage}"
    )
    if request is None:
        by = f" by {creator}" if creator is not None else ""
        raise RegistryError.not_found(f"No open request{by} {where}.")
    if request_code is not None and request.code != request_code:
        raise RegistryError.invalid(
            f"Request {request_code} is not the open request {where}: the model may have been "
            "renamed, or the request decided and another one made, since it was read. List the "
            "requests again and decide the one you mean."
        )
    return request


def _approvals_that_count(
    *,
    request: TransitionRequest,
    registered_model: RegisteredModel,
    from_stage: str,
    policy: StagePolicy,
) -> tuple[list[str], list[str]]:
    """The approvers whose approval counts now, and each other one with the reason it does not.

    Checked when the move would apply, not only when each approval was given: an approver who
    no longer holds the level of the move (a grant revoked or lowered, the account deactivated
    or deleted), or a requester's own approval once the policy forbids self-approval, no longer
    counts towards ``required_approvals``.
    """
    needed = permissions.transition_level(from_stage, request.to_stage)
    counted: list[str] = []
    lapsed: list[str] = []
    for approval in request.approvals.select_related("approver").order_by("created_at", "id"):
        name = approval.approver_username
        if not name:  # the registry itself
            counted.append(name)
        elif approval.approver is None:
            lapsed.append(f"{name} (the account was deleted)")
        elif name == request.requested_by_username and not policy.allow_self_approval:
            lapsed.append(f"{name} (the requester, and allow_self_approval is off)")
        elif (held := permissions.effective_level(approval.approver, registered_model)) < needed:
            lapsed.append(f"{name} (now holds {held.name}; the move needs {needed.name})")
        else:
            counted.append(name)
    return counted, lapsed


def _request_step(
    *,
    actor: User | None,
    registered_model: RegisteredModel,
    model_version: ModelVersion,
    request: TransitionRequest,
    activity_type: ActivityType,
    event: EventType | None,
    from_stage: str,
    comment: str,
    at: Any,
) -> Activity:
    """A step in a request's life: its entry on the trail and, if any, its webhook event."""
    activity = _record_activity(
        actor=actor,
        model_version=model_version,
        activity_type=activity_type,
        from_stage=from_stage,
        to_stage=request.to_stage,
        comment=comment,
        request=request,
        at=at,
    )
    if event is not None:
        webhook_event_emit(
            event=event,
            registered_model=registered_model,
            model_version=model_version,
            payload_data={
                "from_stage": from_stage,
                "to_stage": request.to_stage,
                "comment": comment,
            },
            actor=actor,
        )
    return activity


def transition_request_create(
    *, actor: User | None, name: Any, version: Any, stage: Any, comment: Any = None
) -> TransitionRequest:
    """Ask for a version to be moved to ``stage``. Anyone who can read the model may ask; at
    most one request per version and target stage is open at a time."""
    name = validation.require_string(name, "name")
    number = validation.version_number(version)
    target = validation.stage(stage)
    comment = validation.bounded_text(comment, "comment", COMMENT_MAX_LENGTH)
    try:
        with transaction.atomic():
            registered_model, model_version = _lock_model_version(
                name, number, actor=actor, level=Level.CAN_READ, action="request transitions in"
            )
            now = timezone.now()  # after the lock: the trail's order is the lock's
            if model_version.status != ModelVersionStatus.READY:
                raise RegistryError.invalid(
                    f"Model version {number} of '{name}' is {model_version.status}: only READY "
                    "versions move between stages."
                )
            if model_version.current_stage == target:
                raise RegistryError.invalid(
                    f"Model version {number} of '{name}' is already in {target}."
                )
            policy = stage_policy_effective(registered_model=registered_model, stage=target)
            requester = _actor_or_none(actor)
            request = TransitionRequest.objects.create(
                model_version=model_version,
                from_stage=model_version.current_stage,
                to_stage=target,
                requested_by=requester,
                requested_by_username=requester.get_username() if requester else "",
                comment=comment,
                created_at=now,
                expires_at=now + policy.request_ttl if policy.request_ttl else None,
            )
            _request_step(
                actor=actor,
                registered_model=registered_model,
                model_version=model_version,
                request=request,
                activity_type=ActivityType.REQUESTED_TRANSITION,
                event=EventType.TRANSITION_REQUEST_CREATED,
                from_stage=request.from_stage,
                comment=comment,
                at=now,
            )
    except IntegrityError:
        # The partial unique constraint decides between two requesters racing.
        raise RegistryError.already_exists(
            f"An open request to move version {number} of '{name}' to {target} already "
            "exists: approve, reject or cancel it first."
        ) from None
    return request


def transition_request_approve(
    *,
    actor: User | None,
    name: Any,
    version: Any,
    stage: Any,
    archive_existing_versions: Any = False,
    comment: Any = None,
    request_id: Any = None,
) -> Activity:
    """Approve the open request to move a version to ``stage`` (the one ``request_id`` names,
    if given: :func:`_open_request`).

    The approver needs the level of the move. Under the stage policy the request may need
    several distinct approvers and may forbid the requester approving their own; each approval
    is recorded, and the approval that completes the count applies the move in the same
    transaction. Only approvals that still count then are counted
    (:func:`_approvals_that_count`). Returns the APPROVED_REQUEST activity.
    """
    name = validation.require_string(name, "name")
    number = validation.version_number(version)
    target = validation.stage(stage)
    request_code = _request_code(request_id)
    archive = validation.boolean(archive_existing_versions, "archive_existing_versions")
    comment = validation.bounded_text(comment, "comment", COMMENT_MAX_LENGTH)
    _check_archive_target(archive, target)
    with transaction.atomic():
        # Deciding needs the level of the move, which depends on the version's stage.
        registered_model, model_version = _lock_model_version(
            name, number, actor=actor, level=None, action=""
        )
        now = timezone.now()  # after the lock: the trail's order is the lock's
        permissions.require_can_transition(
            actor, registered_model, model_version.current_stage, target
        )
        request = _open_request(model_version, target, request_code=request_code)
        policy = stage_policy_effective(registered_model=registered_model, stage=target)
        approver = _actor_or_none(actor)
        approver_name = approver.get_username() if approver else ""
        if approver_name == request.requested_by_username and not policy.allow_self_approval:
            raise _policy_refusal(
                policy,
                registered_model,
                "allow_self_approval is off: the requester may not approve their own request.",
            )
        if request.approvals.filter(approver_username=approver_name).exists():
            raise RegistryError.invalid(
                f"{approver_name} has already approved this request; it needs another approver."
            )
        TransitionApproval.objects.create(
            request=request,
            approver=approver,
            approver_username=approver_name,
            comment=comment,
            created_at=now,
        )
        counted, lapsed = _approvals_that_count(
            request=request,
            registered_model=registered_model,
            from_stage=model_version.current_stage,
            policy=policy,
        )
        if len(counted) < policy.required_approvals:
            no_longer = f" Approvals that no longer count: {'; '.join(lapsed)}." if lapsed else ""
            return _record_activity(
                actor=actor,
                model_version=model_version,
                activity_type=ActivityType.APPROVED_REQUEST,
                from_stage=model_version.current_stage,
                to_stage=target,
                comment=comment,
                system_comment=(
                    f"Approval {len(counted)} of {policy.required_approvals}: the request stays "
                    "open until enough distinct approvers agree." + no_longer
                ),
                request=request,
                at=now,
            )
        _check_required_tags(policy, registered_model, model_version)
        activity = _apply_stage_change(
            actor=actor,
            registered_model=registered_model,
            model_version=model_version,
            target=target,
            archive_existing_versions=archive,
            activity_type=ActivityType.APPROVED_REQUEST,
            comment=comment,
            request=request,
            at=now,
        )
        TransitionRequest.objects.filter(pk=request.pk).update(
            status=TransitionRequestStatus.APPROVED, closed_at=now
        )
        webhook_event_emit(
            event=EventType.TRANSITION_REQUEST_APPROVED,
            registered_model=registered_model,
            model_version=model_version,
            payload_data={
                "from_stage": activity.from_stage,
                "to_stage": target,
                "comment": comment,
            },
            actor=actor,
        )
    return activity


def transition_request_reject(
    *,
    actor: User | None,
    name: Any,
    version: Any,
    stage: Any,
    comment: Any = None,
    request_id: Any = None,
) -> Activity:
    """Reject the open request (the one ``request_id`` names, if given): one rejection closes
    it, whatever approvals it had."""
    name = validation.require_string(name, "name")
    number = validation.version_number(version)
    target = validation.stage(stage)
    request_code = _request_code(request_id)
    comment = validation.bounded_text(comment, "comment", COMMENT_MAX_LENGTH)
    with transaction.atomic():
        # Deciding needs the level of the move, which depends on the version's stage.
        registered_model, model_version = _lock_model_version(
            name, number, actor=actor, level=None, action=""
        )
        now = timezone.now()  # after the lock: the trail's order is the lock's
        permissions.require_can_transition(
            actor, registered_model, model_version.current_stage, target
        )
        request = _open_request(model_version, target, request_code=request_code)
        TransitionRequest.objects.filter(pk=request.pk).update(
            status=TransitionRequestStatus.REJECTED, closed_at=now
        )
        activity = _request_step(
            actor=actor,
            registered_model=registered_model,
            model_version=model_version,
            request=request,
            activity_type=ActivityType.REJECTED_REQUEST,
            event=EventType.TRANSITION_REQUEST_REJECTED,
            from_stage=model_version.current_stage,
            comment=comment,
            at=now,
        )
    return activity


def transition_request_cancel(
    *,
    actor: User | None,
    name: Any,
    version: Any,
    stage: Any,
    creator: Any,
    comment: Any = None,
    request_id: Any = None,
) -> Activity:
    """Cancel ``creator``'s open request (the one ``request_id`` names, if given); the
    requester or a CAN_MANAGE holder may."""
    name = validation.require_string(name, "name")
    number = validation.version_number(version)
    target = validation.stage(stage)
    creator = validation.require_string(creator, "creator")
    request_code = _request_code(request_id)
    comment = validation.bounded_text(comment, "comment", COMMENT_MAX_LENGTH)
    with transaction.atomic():
        is_requester = permissions.is_signed_in(actor) and actor.get_username() == creator
        registered_model, model_version = _lock_model_version(
            name,
            number,
            actor=actor,
            level=Level.CAN_READ if is_requester else Level.CAN_MANAGE,
            action="cancel others' requests in",
        )
        now = timezone.now()  # after the lock: the trail's order is the lock's
        request = _open_request(model_version, target, creator=creator, request_code=request_code)
        TransitionRequest.objects.filter(pk=request.pk).update(
            status=TransitionRequestStatus.CANCELLED, closed_at=now
        )
        activity = _request_step(
            actor=actor,
            registered_model=registered_model,
            model_version=model_version,
            request=request,
            activity_type=ActivityType.CANCELLED_REQUEST,
            event=None,
            from_stage=request.from_stage,
            comment=comment,
            at=now,
        )
    return activity


def transition_requests_expire(*, now: Any = None) -> int:
    """Close the open requests whose policy's ``request_ttl`` has run out (Celery beat)."""
    now = now or timezone.now()
    expired = 0
    due = TransitionRequest.objects.filter(
        status=TransitionRequestStatus.OPEN, expires_at__lte=now
    ).values_list("pk", "model_version__registered_model__name")
    for pk, model_name in due:
        with transaction.atomic():
            _lock_registered_model(model_name)
            # Decided since the list was read? The conditional update leaves it alone.
            if not TransitionRequest.objects.filter(
                pk=pk, status=TransitionRequestStatus.OPEN
            ).update(status=TransitionRequestStatus.EXPIRED, closed_at=now):
                continue
            request = TransitionRequest.objects.select_related(
                "model_version__registered_model"
            ).get(pk=pk)
            _record_activity(
                actor=None,
                model_version=request.model_version,
                activity_type=ActivityType.CANCELLED_REQUEST,
                from_stage=request.from_stage,
                to_stage=request.to_stage,
                system_comment=(
                    f"Expired: open since {request.created_at:%Y-%m-%d %H:%M} UTC, longer than "
                    "the stage policy's request_ttl allows."
                ),
                request=request,
                at=now,
            )
            expired += 1
    return expired


# --- Comments -------------------------------------------------------------------------------


def comment_create(*, actor: User | None, name: Any, version: Any, comment: Any) -> Comment:
    name = validation.require_string(name, "name")
    number = validation.version_number(version)
    text = validation.require_string(comment, "comment")
    text = validation.bounded_text(text, "comment", COMMENT_MAX_LENGTH)
    now = timezone.now()
    model_version = model_version_by_number(name, number)
    permissions.require_level(
        actor, model_version.registered_model, Level.CAN_READ, action="comment on"
    )
    author = _actor_or_none(actor)
    with transaction.atomic():
        created = Comment.objects.create(
            model_version=model_version,
            author=author,
            author_username=author.get_username() if author else "",
            text=text,
            created_at=now,
            updated_at=now,
        )
        _record_activity(
            actor=actor,
            model_version=model_version,
            activity_type=ActivityType.NEW_COMMENT,
            comment=text,
            at=now,
        )
        webhook_event_emit(
            event=EventType.COMMENT_CREATED,
            registered_model=model_version.registered_model,
            model_version=model_version,
            payload_data={"comment": text},
            actor=actor,
        )
    return created


def _comment_by_id(comment_id: Any) -> Comment:
    try:
        return Comment.objects.select_related("model_version__registered_model").get(
            code=uuid.UUID(str(comment_id))
        )
    except (ValueError, Comment.DoesNotExist):
        raise RegistryError.not_found(f"Comment {comment_id} not found.") from None


def comment_update(*, actor: User | None, id: Any, comment: Any) -> Comment:  # noqa: A002
    """Edit a comment: only its author may."""
    text = validation.require_string(comment, "comment")
    text = validation.bounded_text(text, "comment", COMMENT_MAX_LENGTH)
    found = _comment_by_id(validation.require_string(id, "id"))
    permissions.require_level(
        actor, found.model_version.registered_model, Level.CAN_READ, action="read"
    )
    if not permissions.is_signed_in(actor) or actor.get_username() != found.author_username:
        raise RegistryError(ErrorCode.PERMISSION_DENIED, "Only a comment's author may edit it.")
    found.text = text
    found.updated_at = timezone.now()
    found.save(update_fields=["text", "updated_at"])
    return found


def comment_delete(*, actor: User | None, id: Any) -> None:  # noqa: A002
    """Delete a comment: its author or a CAN_MANAGE holder may."""
    found = _comment_by_id(validation.require_string(id, "id"))
    registered_model = found.model_version.registered_model
    if not (permissions.is_signed_in(actor) and actor.get_username() == found.author_username):
        permissions.require_level(
            actor, registered_model, Level.CAN_MANAGE, action="delete others' comments in"
        )
    found.delete()


# --- Stage policies -------------------------------------------------------------------------

POLICY_FIELDS = (
    "required_approvals",
    "allow_self_approval",
    "allow_direct_transition",
    "required_version_tags",
    "gate_tag_groups",
    "request_ttl_seconds",
)


def _policy_scope(actor: User | None, name: Any) -> RegisteredModel | None:
    """The model a policy belongs to (None: the registry default), after the permission check:
    a model's policies need CAN_MANAGE on it, the registry-wide defaults an admin."""
    if name in (None, ""):
        if not permissions.is_admin(actor):
            raise RegistryError(
                ErrorCode.PERMISSION_DENIED
                if permissions.is_signed_in(actor)
                else ErrorCode.UNAUTHENTICATED,
                "Only registry admins change the registry-wide stage policies.",
            )
        return None
    registered_model = registered_model_by_name(validation.require_string(name, "name"))
    permissions.require_level(
        actor, registered_model, Level.CAN_MANAGE, action="change the stage policies of"
    )
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
        _policy_audit(
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


def _policy_audit(
    actor: User | None,
    action: str,
    registered_model: RegisteredModel | None,
    **detail: Any,
) -> None:
    AuditEntry.objects.create(
        action=action,
        model_name=registered_model.name if registered_model else "",
        model_code=registered_model.code if registered_model else uuid.UUID(int=0),
        detail=detail,
        actor_username=actor.get_username() if permissions.is_signed_in(actor) else "",
    )


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
        _policy_audit(
            actor,
            AuditEntry.Action.STAGE_POLICY_DELETED,
            registered_model,
            stage=target,
            before=before,
        )
