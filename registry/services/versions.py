"""Model versions and their tags: create (a copy, a reference or a copy of another version),
describe, retry a failed registration, delete. Tags that a stage policy requires (gate tags)
are checked by the stage engine (``stages.check_gate_tags``)."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts import permissions
from accounts.models import User
from accounts.permissions import Level
from kernel.errors import ErrorCode, RegistryError
from registry import validation
from registry.artifacts import paths as artifact_paths
from registry.artifacts import services as artifact_services
from registry.artifacts import sources as artifact_sources
from registry.models import (
    ActivityType,
    AuditEntry,
    ModelVersion,
    ModelVersionStatus,
    ModelVersionTag,
    PointerCause,
    RegisteredModel,
    Stage,
    TagChangeCause,
)
from registry.selectors import (
    model_version_by_number,
    model_version_get,
    model_version_get_by_alias,
    model_version_latest,
    with_tags_and_aliases_of,
)
from registry.services.aliases import aliases_deleted_with, deletion_guards
from registry.services.common import (
    actor_or_none,
    lock_model_version,
    lock_registered_model,
    record_activity,
)
from registry.services.history import record_tag_changes
from registry.services.stages import check_gate_tags
from webhooks.models import EventType
from webhooks.services.outbox import webhook_event_emit


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
        registered_model = lock_registered_model(name)
        permissions.require_level(
            actor, registered_model, Level.CAN_EDIT, action="create versions of"
        )
        if copied_from is None:
            check_gate_tags(
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
            created_by=actor_or_none(actor),
            created_at=now,
            updated_at=now,
        )
        # The answer is rendered from what was written (docs/decisions/0021): the tags in the
        # order they were inserted (their ids), and no aliases, which a new version has none of.
        model_version.tag_list = ModelVersionTag.objects.bulk_create(
            [
                ModelVersionTag(model_version=model_version, key=key, value=value)
                for key, value in cleaned_tags
            ]
        )
        model_version.alias_list = []
        record_tag_changes(
            actor=actor,
            model_version=model_version,
            changes=((key, None, value) for key, value in cleaned_tags),
            cause=TagChangeCause.WITH_VERSION,
            at=now,
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
            under_lock=True,
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
    # The answer's tags and aliases in one statement; the rest is what was read and written
    # (docs/decisions/0021-writes-in-fewer-statements.md).
    return with_tags_and_aliases_of(model_version)


def model_version_delete(*, actor: User | None, name: Any, version: Any) -> None:
    """Delete a version: its tags, aliases, requests, approvals and comments go with it; its
    trail stays (no foreign key to cascade through) and ends with the deletion, which is also a
    webhook event. The number stays used, so the trail keeps naming this version only.

    A version in Production, or named by a protected alias, is refused until it is moved
    (``aliases.deletion_guards``); the aliases that go with a version are on the history."""
    name = validation.require_string(name, "name")
    number = validation.version_number(version)
    with transaction.atomic():
        registered_model, model_version = lock_model_version(
            name, number, actor=actor, level=Level.CAN_MANAGE, action="delete versions of"
        )
        guards = deletion_guards(registered_model, [model_version]).get(number)
        if guards:
            raise RegistryError(
                ErrorCode.PERMISSION_DENIED,
                f"Version {number} of '{name}' may not be deleted: "
                + " and ".join(guard.reason for guard in guards)
                + ". "
                + " ".join(guard.remedy for guard in guards),
            )
        now = timezone.now()  # after the lock: the trail's order is the lock's
        aliases_deleted_with(
            actor=actor,
            registered_model=registered_model,
            versions=[model_version],
            cause=PointerCause.VERSION_DELETED,
            at=now,
        )
        record_activity(
            actor=actor,
            model_version=model_version,
            activity_type=ActivityType.DELETED_MODEL_VERSION,
            from_stage=model_version.current_stage,
            at=now,
            model_locked=True,
        )
        webhook_event_emit(
            event=EventType.MODEL_VERSION_DELETED,
            registered_model=registered_model,
            model_version=model_version,
            payload_data={"from_stage": model_version.current_stage},
            actor=actor,
            under_lock=True,
        )
        if not model_version.is_reference:
            artifact_services.artifacts_delete_schedule(
                folder=artifact_paths.version_folder(model_version)
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
        registered_model, model_version = lock_model_version(
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
        AuditEntry.objects.record(
            action=AuditEntry.Action.MODEL_VERSION_REGISTRATION_RETRIED,
            registered_model=registered_model,
            actor=actor,
            detail={
                "version": number,
                "source": model_version.source,
                "previous_status_message": failure[:2000],
            },
            at=now,
        )
        artifact_services.model_version_copy_schedule(model_version=model_version)
    return model_version


def _version_for_tag_write(actor: User | None, name: str, number: int, key: str) -> ModelVersion:
    """The version whose tag ``key`` the actor sets or deletes: CAN_EDIT on its model, and for a
    gate tag, what the stage policy asks (``stages.check_gate_tags``)."""
    model_version = model_version_by_number(name, number)
    permissions.require_level(
        actor, model_version.registered_model, Level.CAN_EDIT, action="edit version tags of"
    )
    check_gate_tags(
        actor=actor,
        registered_model=model_version.registered_model,
        current_stage=model_version.current_stage,
        keys={key},
    )
    return model_version


def _tag_write(model_version: ModelVersion, key: str, value: str) -> str | None:
    """Set the tag, returning the value it replaces (None: the version had no such tag). The
    row is read and locked as ``update_or_create`` would, so the old value costs no query of
    its own (docs/decisions/0022-version-tag-history.md)."""
    tag = (
        ModelVersionTag.objects.select_for_update()
        .filter(model_version=model_version, key=key)
        .only("pk", "value")
        .first()
    )
    if tag is None:
        try:
            with transaction.atomic():
                ModelVersionTag.objects.create(model_version=model_version, key=key, value=value)
            return None
        except IntegrityError:
            # Another transaction set it first and committed: change its row instead.
            tag = (
                ModelVersionTag.objects.select_for_update()
                .only("pk", "value")
                .get(model_version=model_version, key=key)
            )
    ModelVersionTag.objects.filter(pk=tag.pk).update(value=value)
    return tag.value


def _tag_remove(model_version: ModelVersion, key: str) -> str | None:
    """Delete the tag, returning the value it had (None: the version had no such tag), in one
    statement: ``DELETE ... RETURNING``, which the ORM does not offer."""
    quote = connection.ops.quote_name
    sql = (
        f"DELETE FROM {quote(ModelVersionTag._meta.db_table)}"  # noqa: S608
        f" WHERE {quote('model_version_id')} = %s AND {quote('key')} = %s"
        f" RETURNING {quote('value')}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [model_version.pk, key])
        row = cursor.fetchone()
    return None if row is None else str(row[0])


def model_version_tag_set(
    *, actor: User | None, name: Any, version: Any, key: Any, value: Any
) -> None:
    name = validation.require_string(name, "name")
    number = validation.version_number(version)
    key = validation.version_tag_key(key)
    value = validation.tag_value(value)
    model_version = _version_for_tag_write(actor, name, number, key)
    with transaction.atomic():
        old_value = _tag_write(model_version, key, value)
        record_tag_changes(
            actor=actor,
            model_version=model_version,
            changes=[(key, old_value, value)],
            cause=TagChangeCause.DIRECT,
            at=timezone.now(),
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
    model_version = _version_for_tag_write(actor, name, number, key)
    with transaction.atomic():
        old_value = _tag_remove(model_version, key)
        if old_value is not None:
            record_tag_changes(
                actor=actor,
                model_version=model_version,
                changes=[(key, old_value, None)],
                cause=TagChangeCause.DIRECT,
                at=timezone.now(),
            )
            webhook_event_emit(
                event=EventType.MODEL_VERSION_TAG_DELETED,
                registered_model=model_version.registered_model,
                model_version=model_version,
                payload_data={"key": key},
                actor=actor,
            )


def _may_set_gate_tag(actor: User | None, registered_model: RegisteredModel, key: str) -> bool:
    try:
        check_gate_tags(
            actor=actor, registered_model=registered_model, current_stage=Stage.NONE, keys={key}
        )
    except RegistryError:
        return False
    return True
