"""Every change to the registry goes through one of these functions (DESIGN D2).

Each takes the acting user first (``actor=``) and keyword-only arguments, validates its input,
and does its writes in one transaction. Changes of stage for one registered model serialise on
that model's row lock, and write the activity trail in the same transaction. Permissions and
webhook events are added here by the accounts and webhooks work, so that the API, the UI, the
admin and Celery tasks all obey the same rules.
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from registry import validation
from registry.errors import RegistryError
from registry.models import (
    Activity,
    ActivityType,
    ModelVersion,
    ModelVersionTag,
    RegisteredModel,
    RegisteredModelAlias,
    RegisteredModelTag,
    Stage,
)
from registry.selectors import model_version_get, registered_model_get


def _lock_registered_model(name: str) -> RegisteredModel:
    """The registered model, locked FOR UPDATE until the end of the current transaction."""
    try:
        return RegisteredModel.objects.select_for_update().get(name=name)
    except RegisteredModel.DoesNotExist:
        raise RegistryError.not_found(f"Registered Model with name={name} not found") from None


def _lock_model_version(name: str, version: int) -> tuple[RegisteredModel, ModelVersion]:
    registered_model = _lock_registered_model(name)
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
        registered_model.description = description
        registered_model.updated_at = timezone.now()
        registered_model.save(update_fields=["description", "updated_at"])
    return registered_model


def registered_model_delete(*, actor: User | None, name: Any) -> None:
    name = validation.require_string(name, "name")
    with transaction.atomic():
        registered_model = _lock_registered_model(name)
        registered_model.delete()


def registered_model_tag_set(*, actor: User | None, name: Any, key: Any, value: Any) -> None:
    name = validation.require_string(name, "name")
    key = validation.tag_key(key)
    value = validation.tag_value(value)
    registered_model = registered_model_get(name=name)
    RegisteredModelTag.objects.update_or_create(
        registered_model=registered_model, key=key, defaults={"value": value}
    )


def registered_model_tag_delete(*, actor: User | None, name: Any, key: Any) -> None:
    name = validation.require_string(name, "name")
    key = validation.tag_key(key)
    registered_model = registered_model_get(name=name)
    RegisteredModelTag.objects.filter(registered_model=registered_model, key=key).delete()


# --- Aliases ----------------------------------------------------------------------------------


def registered_model_alias_set(
    *, actor: User | None, name: Any, alias: Any, version: Any
) -> RegisteredModelAlias:
    name = validation.require_string(name, "name")
    alias = validation.alias_name(alias, for_set=True)
    number = validation.version_number(version)
    with transaction.atomic():
        registered_model, model_version = _lock_model_version(name, number)
        # The model row lock serialises alias writers, so this upsert cannot race.
        registered_model_alias, _ = RegisteredModelAlias.objects.update_or_create(
            registered_model=registered_model,
            alias=alias,
            defaults={"model_version": model_version},
        )
    return registered_model_alias


def registered_model_alias_delete(*, actor: User | None, name: Any, alias: Any) -> None:
    name = validation.require_string(name, "name")
    alias = validation.alias_name(alias, for_set=False)
    registered_model = registered_model_get(name=name)
    RegisteredModelAlias.objects.filter(registered_model=registered_model, alias=alias).delete()


# --- Model versions ---------------------------------------------------------------------------


def model_version_create(
    *,
    actor: User | None,
    name: Any,
    source: Any,
    run_id: Any = None,
    run_link: Any = None,
    description: Any = None,
    tags: Any = None,
) -> ModelVersion:
    """A new version of an existing registered model, numbered one past the highest ever given."""
    name = validation.require_string(name, "name")
    source = validation.source(source)
    run_id = validation.run_id(run_id)
    run_link = validation.run_link(run_link)
    description = validation.description(description)
    cleaned_tags = validation.tags(tags)
    now = timezone.now()
    with transaction.atomic():
        # Under the row lock this read-modify-write cannot race with another creator.
        registered_model = _lock_registered_model(name)
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
            created_by=_actor_or_none(actor),
            created_at=now,
            updated_at=now,
        )
        ModelVersionTag.objects.bulk_create(
            ModelVersionTag(model_version=model_version, key=key, value=value)
            for key, value in cleaned_tags
        )
    return model_version


def model_version_update(
    *, actor: User | None, name: Any, version: Any, description: Any = None
) -> ModelVersion:
    name = validation.require_string(name, "name")
    number = validation.version_number(version)
    description = validation.description(description)
    model_version = model_version_get(name=name, version=number)
    model_version.description = description
    model_version.updated_at = timezone.now()
    model_version.save(update_fields=["description", "updated_at"])
    return model_version


def model_version_delete(*, actor: User | None, name: Any, version: Any) -> None:
    name = validation.require_string(name, "name")
    number = validation.version_number(version)
    with transaction.atomic():
        registered_model, model_version = _lock_model_version(name, number)
        model_version.delete()  # aliases and tags go with it; the number stays used
        registered_model.updated_at = timezone.now()
        registered_model.save(update_fields=["updated_at"])


def model_version_tag_set(
    *, actor: User | None, name: Any, version: Any, key: Any, value: Any
) -> None:
    name = validation.require_string(name, "name")
    number = validation.version_number(version)
    key = validation.tag_key(key)
    value = validation.tag_value(value)
    model_version = model_version_get(name=name, version=number)
    ModelVersionTag.objects.update_or_create(
        model_version=model_version, key=key, defaults={"value": value}
    )


def model_version_tag_delete(*, actor: User | None, name: Any, version: Any, key: Any) -> None:
    name = validation.require_string(name, "name")
    number = validation.version_number(version)
    key = validation.tag_key(key)
    model_version = model_version_get(name=name, version=number)
    ModelVersionTag.objects.filter(model_version=model_version, key=key).delete()


def _record_transition(
    *,
    actor: User | None,
    model_version: ModelVersion,
    from_stage: str,
    to_stage: str,
    activity_type: ActivityType,
    comment: str,
    at: Any,
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
        actor=actor,
        actor_username=actor.get_username() if actor else "",
        created_at=at,
    )


def model_version_stage_transition(
    *,
    actor: User | None,
    name: Any,
    version: Any,
    stage: Any,
    archive_existing_versions: Any = False,
    comment: Any = None,
) -> ModelVersion:
    """Move a version to ``stage``; optionally archive the others in that stage.

    Every move, including each version archived on the way, is written to the activity trail
    in the same transaction, under the registered model's row lock.
    """
    name = validation.require_string(name, "name")
    number = validation.version_number(version)
    target = validation.stage(stage)
    archive = validation.boolean(archive_existing_versions, "archive_existing_versions")
    comment = validation.bounded_text(comment, "comment", 10_000)
    if archive and target not in validation.ACTIVE_STAGES:
        raise RegistryError.invalid(
            "Model version transition cannot archive existing model versions because "
            f"'{target}' is not an Active stage. Valid stages are ['Staging', 'Production']"
        )
    now = timezone.now()
    with transaction.atomic():
        registered_model, model_version = _lock_model_version(name, number)
        if archive:
            _archive_others(actor=actor, model_version=model_version, stage=target, at=now)
        from_stage = model_version.current_stage
        model_version.current_stage = target
        model_version.updated_at = now
        model_version.save(update_fields=["current_stage", "updated_at"])
        registered_model.updated_at = now
        registered_model.save(update_fields=["updated_at"])
        _record_transition(
            actor=actor,
            model_version=model_version,
            from_stage=from_stage,
            to_stage=target,
            activity_type=ActivityType.APPLIED_TRANSITION,
            comment=comment,
            at=now,
        )
    return model_version


def _archive_others(
    *, actor: User | None, model_version: ModelVersion, stage: Stage, at: Any
) -> None:
    others = model_version.registered_model.versions.filter(current_stage=stage).exclude(
        pk=model_version.pk
    )
    for other in others:
        other.registered_model = model_version.registered_model
        _record_transition(
            actor=actor,
            model_version=other,
            from_stage=other.current_stage,
            to_stage=Stage.ARCHIVED,
            activity_type=ActivityType.SYSTEM_TRANSITION,
            comment=f"Archived when version {model_version.version} moved to {stage}.",
            at=at,
        )
    others.update(current_stage=Stage.ARCHIVED, updated_at=at)
