"""Registered models: create, rename, describe, tag, delete."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts import permissions
from accounts import services as accounts_services
from accounts.models import User
from accounts.permissions import Level
from kernel.errors import ErrorCode, RegistryError
from registry import validation
from registry.artifacts import paths as artifact_paths
from registry.artifacts import services as artifact_services
from registry.models import (
    Activity,
    ActivityType,
    AuditEntry,
    PointerCause,
    RegisteredModel,
    RegisteredModelTag,
)
from registry.selectors import registered_model_by_name
from registry.services.aliases import aliases_deleted_with, deletion_guards
from registry.services.common import actor_or_none, lock_registered_model
from webhooks.models import EventType
from webhooks.services.matching import hooks_may_match_new_model
from webhooks.services.outbox import webhook_event_emit


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
                created_by=actor_or_none(actor),
                created_at=now,
                updated_at=now,
                # Returned by the insert; under_lock below (docs/decisions/0021).
                hooks_may_match=hooks_may_match_new_model(),
            )
            # The answer is rendered from what was written (docs/decisions/0021): the tags
            # in the order they were inserted, no aliases and no versions yet.
            registered_model.tag_list = RegisteredModelTag.objects.bulk_create(
                [
                    RegisteredModelTag(registered_model=registered_model, key=key, value=value)
                    for key, value in cleaned_tags
                ]
            )
            registered_model.alias_list = []
            registered_model.latest_versions = []
            accounts_services.registered_model_grant_creator(
                registered_model=registered_model, actor=actor
            )
            webhook_event_emit(
                event=EventType.REGISTERED_MODEL_CREATED,
                registered_model=registered_model,
                payload_data={"tags": dict(cleaned_tags), "description": description},
                actor=actor,
                # The row is this transaction's until it commits: nobody else sees it yet.
                under_lock=True,
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
            registered_model = lock_registered_model(name)
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
        registered_model = lock_registered_model(name)
        permissions.require_level(
            actor, registered_model, Level.CAN_EDIT, action="edit the description of"
        )
        registered_model.description = description
        registered_model.updated_at = timezone.now()
        registered_model.save(update_fields=["description", "updated_at"])
    return registered_model


def registered_model_delete(*, actor: User | None, name: Any, force: Any = False) -> None:
    """Delete a model and its versions. The versions' trails stay (they hold no foreign key)
    and each ends with the deletion; the model's deletion is audited and is a webhook event
    (for registry-wide hooks: the model's own hooks go with it).

    A model with versions in Production or named by protected aliases is deleted only with
    ``force`` (its CAN_MANAGE holders, as for any deletion); the audit entry then lists them."""
    name = validation.require_string(name, "name")
    force = validation.boolean(force, "force") if force is not None else False
    with transaction.atomic():
        registered_model = lock_registered_model(name)
        permissions.require_level(actor, registered_model, Level.CAN_MANAGE, action="delete")
        now = timezone.now()
        model_versions = list(registered_model.versions.all())
        guards = deletion_guards(registered_model, model_versions)
        guarded = [
            f"version {number} ({' and '.join(guard.reason for guard in reasons)})"
            for number, reasons in sorted(guards.items())
        ]
        if guarded and not force:
            raise RegistryError(
                ErrorCode.PERMISSION_DENIED,
                f"Registered model '{name}' has versions that may not simply be deleted: "
                f"{'; '.join(guarded)}. Move them first, or delete with force=true (audited).",
            )
        aliases_deleted_with(
            actor=actor,
            registered_model=registered_model,
            versions=model_versions,
            cause=PointerCause.MODEL_DELETED,
            at=now,
        )
        versions = [(mv.pk, mv.version, mv.current_stage) for mv in model_versions]
        author = actor_or_none(actor)
        Activity.objects.append(
            [
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
            ]
        )
        AuditEntry.objects.record(
            action=AuditEntry.Action.REGISTERED_MODEL_DELETED,
            registered_model=registered_model,
            actor=author,
            detail=(
                {"versions": len(versions), "forced": True, "guarded": guarded}
                if guarded
                else {"versions": len(versions)}
            ),
            at=now,
        )
        webhook_event_emit(
            event=EventType.REGISTERED_MODEL_DELETED,
            registered_model=registered_model,
            actor=actor,
        )
        artifact_services.artifacts_delete_schedule(
            folder=artifact_paths.model_folder(registered_model)
        )
        registered_model.delete()


def registered_model_tag_set(*, actor: User | None, name: Any, key: Any, value: Any) -> None:
    name = validation.require_string(name, "name")
    key = validation.tag_key(key)
    value = validation.tag_value(value)
    registered_model = registered_model_by_name(name)
    permissions.require_level(actor, registered_model, Level.CAN_EDIT, action="edit the tags of")
    # One INSERT ... ON CONFLICT DO UPDATE on the (model, key) constraint (docs/decisions/0021).
    RegisteredModelTag.objects.bulk_create(
        [RegisteredModelTag(registered_model=registered_model, key=key, value=value)],
        update_conflicts=True,
        unique_fields=["registered_model", "key"],
        update_fields=["value"],
    )


def registered_model_tag_delete(*, actor: User | None, name: Any, key: Any) -> None:
    name = validation.require_string(name, "name")
    key = validation.tag_key(key)
    registered_model = registered_model_by_name(name)
    permissions.require_level(actor, registered_model, Level.CAN_EDIT, action="edit the tags of")
    RegisteredModelTag.objects.filter(registered_model=registered_model, key=key).delete()
