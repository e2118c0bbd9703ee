"""The writes of an import from another registry (docs/migrating.md): one registered model, one
version, or one model's aliases, each in its own transaction, so that a run killed half-way
leaves only whole objects behind and the next run carries on after them.

An import is an administrator's migration, not a promotion: stages and aliases are set as the
source has them, without the policies, requests or webhook events of a move here, and every
write is on the version's trail and the audit log as an import. What was written is kept as
:class:`~registry.models.ImportedObject` rows with two fingerprints (the source's state and
this registry's state when written): a later run updates only what changed on the source and
was not changed here since; what changed on both is a conflict, reported and left alone.

Version numbers are the source's. A number is created here only above the model's counter
(``last_version_number``), which then moves up to it, so gaps stay gaps and no number is ever
given out twice.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts import services as accounts_services
from accounts.models import User
from kernel.errors import RegistryError
from registry import validation
from registry.artifacts import services as artifact_services
from registry.artifacts import sources as artifact_sources
from registry.importing.source import SourceModel, SourceVersion
from registry.models import (
    ActivityType,
    AuditEntry,
    ImportedKind,
    ImportedObject,
    ModelVersion,
    ModelVersionStatus,
    ModelVersionTag,
    PointerCause,
    RegisteredModel,
    RegisteredModelAlias,
    RegisteredModelTag,
    Stage,
    TagChangeCause,
)
from registry.services.common import record_activity
from registry.services.history import record_alias_move, record_stage_move, record_tag_changes

ArtifactMode = Literal["copy", "reference", "skip"]
Result = Literal["imported", "updated", "unchanged", "conflict", "skipped", "failed"]

# The reason of a conflict with an object made here, not by an import.
NOT_IMPORTED = "exists here, differently, and was not imported"
SKIPPED_FILES_MESSAGE = (
    "Imported without its files (--artifacts skip): retry the registration to copy them from "
    "the source."
)


@dataclass(frozen=True)
class Outcome:
    """What happened to one object; ``version`` is 0 for a model and its aliases."""

    kind: str
    name: str
    version: int
    result: Result
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "version": self.version or None,
            "result": self.result,
            "reason": self.reason,
        }


class _DryRun(Exception):  # noqa: N818 - unwinds the transaction of a dry run
    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome


def fingerprint(state: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()


def _model_state(description: str, tags: dict[str, str]) -> dict[str, Any]:
    return {"description": description, "tags": tags}


def _version_state(description: str, tags: dict[str, str], stage: str) -> dict[str, Any]:
    return {"description": description, "tags": tags, "stage": stage}


def _local_model_state(registered_model: RegisteredModel) -> dict[str, Any]:
    tags = dict(
        RegisteredModelTag.objects.filter(registered_model=registered_model).values_list(
            "key", "value"
        )
    )
    return _model_state(registered_model.description, tags)


def _local_version_state(model_version: ModelVersion) -> dict[str, Any]:
    tags = dict(
        ModelVersionTag.objects.filter(model_version=model_version).values_list("key", "value")
    )
    return _version_state(model_version.description, tags, str(model_version.current_stage))


def _local_aliases(registered_model: RegisteredModel) -> dict[str, int]:
    return dict(
        RegisteredModelAlias.objects.filter(registered_model=registered_model).values_list(
            "alias", "model_version__version"
        )
    )


def _creator(user_id: str) -> tuple[User | None, str]:
    """The user of that name here, else the name as text."""
    if not user_id:
        return None, ""
    user = get_user_model().objects.filter(username=user_id).first()
    return (user, "") if user is not None else (None, user_id[:256])


def _decide(record: ImportedObject | None, local: str, source: str) -> tuple[Result, str] | None:
    """For an object that exists here: None to write the source's state over it, else the
    outcome. Never overwrites what was changed here since the import wrote it."""
    if record is None:
        if local == source:
            return "unchanged", "already here as on the source"
        return "conflict", "exists here, differently, and was not imported"
    if record.source_fingerprint == source:
        return "unchanged", ""
    if record.local_fingerprint != local:
        return "conflict", "changed on the source and here since the last import"
    return None


def _record(
    *,
    record: ImportedObject | None,
    registered_model: RegisteredModel,
    kind: ImportedKind,
    version: int,
    source_url: str,
    source: str,
    local: str,
    at: datetime,
) -> None:
    if record is None:
        ImportedObject.objects.create(
            registered_model=registered_model,
            kind=kind,
            version=version,
            source_url=source_url,
            source_fingerprint=source,
            local_fingerprint=local,
            imported_at=at,
            updated_at=at,
        )
    else:
        record.source_url = source_url
        record.source_fingerprint = source
        record.local_fingerprint = local
        record.updated_at = at
        record.save(
            update_fields=["source_url", "source_fingerprint", "local_fingerprint", "updated_at"]
        )


def _audit(
    registered_model: RegisteredModel, source_url: str, what: str, change: str, **more: Any
) -> None:
    AuditEntry.objects.record(
        action=AuditEntry.Action.IMPORTED,
        registered_model=registered_model,
        actor=None,
        detail={"source": source_url, "what": what, "change": change, **more},
    )


def _run(outcome_of: Any, *, dry_run: bool) -> Outcome:
    """Run one object's import in its own transaction; a dry run's is rolled back."""
    try:
        with transaction.atomic():
            outcome: Outcome = outcome_of()
            if dry_run:
                raise _DryRun(outcome)
    except _DryRun as rolled_back:
        return rolled_back.outcome
    return outcome


def _record_of(registered_model: RegisteredModel, kind: ImportedKind, version: int = 0) -> Any:
    return ImportedObject.objects.filter(
        registered_model=registered_model, kind=kind, version=version
    ).first()


def import_model(*, source_url: str, model: SourceModel, dry_run: bool = False) -> Outcome:
    """The registered model: name, description, tags, creator and times."""

    def outcome(result: Result, reason: str = "") -> Outcome:
        return Outcome("model", model.name, 0, result, reason)

    try:
        name = validation.model_name(model.name)
        description = validation.description(model.description)
        tags = validation.tags([{"key": k, "value": v} for k, v in model.tags.items()])
    except RegistryError as exc:
        return outcome("failed", exc.message)
    source = fingerprint(_model_state(description, dict(tags)))

    def write() -> Outcome:
        now = timezone.now()
        registered_model = RegisteredModel.objects.select_for_update().filter(name=name).first()
        if registered_model is None:
            user, user_name = _creator(model.user_id)
            registered_model = RegisteredModel.objects.create(
                name=name,
                description=description,
                created_by=user,
                created_by_name=user_name,
                created_at=model.created_at or now,
                updated_at=model.updated_at or now,
            )
            RegisteredModelTag.objects.bulk_create(
                RegisteredModelTag(registered_model=registered_model, key=k, value=v)
                for k, v in tags
            )
            # The creator manages the model, as when it is created here.
            accounts_services.registered_model_grant_creator(
                registered_model=registered_model, actor=user
            )
            result: Result = "imported"
        else:
            record = _record_of(registered_model, ImportedKind.MODEL)
            local = fingerprint(_local_model_state(registered_model))
            decided = _decide(record, local, source)
            if decided is not None:
                if decided[0] == "unchanged" and record is None:
                    # The same model made here by hand: from now on it is the imported one.
                    _record(
                        record=None,
                        registered_model=registered_model,
                        kind=ImportedKind.MODEL,
                        version=0,
                        source_url=source_url,
                        source=source,
                        local=local,
                        at=now,
                    )
                return outcome(*decided)
            registered_model.description = description
            registered_model.updated_at = model.updated_at or now
            registered_model.save(update_fields=["description", "updated_at"])
            RegisteredModelTag.objects.filter(registered_model=registered_model).delete()
            RegisteredModelTag.objects.bulk_create(
                RegisteredModelTag(registered_model=registered_model, key=k, value=v)
                for k, v in tags
            )
            result = "updated"
        _record(
            record=_record_of(registered_model, ImportedKind.MODEL),
            registered_model=registered_model,
            kind=ImportedKind.MODEL,
            version=0,
            source_url=source_url,
            source=source,
            local=fingerprint(_local_model_state(registered_model)),
            at=now,
        )
        _audit(registered_model, source_url, "model", "created" if result == "imported" else result)
        return outcome(result)

    try:
        return _run(write, dry_run=dry_run)
    except IntegrityError:
        return outcome("failed", "created here at the same time by someone else; run again")


def _copy_of(source: str) -> ModelVersion | None:
    """The version here that a ``models:/<name>/<version>`` source copies (what MLflow's
    ``copy_model_version`` records), once it is here and, for a managed copy, READY: the
    import keeps its kind, as ``model_version_create`` does. None for any other source."""
    ref = artifact_sources.registry_version_ref(source)
    if ref is None:
        return None
    if ref.version is None:
        raise RegistryError.invalid(
            f"{source}: a copy of another version is imported from models:/<name>/<version> only."
        )
    copied = (
        ModelVersion.objects.select_related("registered_model")
        .filter(registered_model__name=ref.name, version=ref.version)
        .first()
    )
    if copied is None:
        raise RegistryError.invalid(
            f"It copies {source}, which is not here yet: import that model, then run again."
        )
    if copied.status != ModelVersionStatus.READY:
        raise RegistryError.invalid(
            f"It copies {source}, which is {copied.status}: run again once it is READY."
        )
    return copied


def _version_fields(version: SourceVersion, artifacts: ArtifactMode) -> dict[str, Any]:
    """The new version's columns from the source's, validated; RegistryError if refused."""
    source = validation.source(version.source)
    copied = _copy_of(source) if artifacts != "skip" else None
    if copied is not None:
        storage_location = copied.storage_location
        status = (
            ModelVersionStatus.READY
            if storage_location
            else ModelVersionStatus.PENDING_REGISTRATION
        )
        message = ""
    elif artifacts == "copy":
        artifact_sources.validate_source(source, actor=None, reference=False)
        storage_location, status, message = "", ModelVersionStatus.PENDING_REGISTRATION, ""
    elif artifacts == "reference":
        artifact_sources.validate_source(source, actor=None, reference=True)
        storage_location, status, message = source, ModelVersionStatus.READY, ""
    else:
        storage_location = ""
        status, message = ModelVersionStatus.FAILED_REGISTRATION, SKIPPED_FILES_MESSAGE
    model_id = validation.model_id(version.model_id) or (
        artifact_sources.logged_model_id(source) or ""
    )
    if copied is not None:
        model_id = model_id or copied.model_id
    return {
        "source": source,
        "run_id": validation.run_id(version.run_id),
        "run_link": validation.run_link(version.run_link),
        "model_id": model_id,
        "storage_location": storage_location,
        "status": status,
        "status_message": message,
        "copied_from": copied,
    }


def import_version(
    *,
    source_url: str,
    version: SourceVersion,
    artifacts: ArtifactMode,
    dry_run: bool = False,
) -> Outcome:
    """One version, under its own number, with its tags, description, stage, creator, times;
    its files copied (through the copy task, as any new version), referenced, or not at all."""

    def outcome(result: Result, reason: str = "") -> Outcome:
        return Outcome("version", version.name, version.version, result, reason)

    if version.status != ModelVersionStatus.READY:
        return outcome("skipped", f"the source's version is {version.status}")
    try:
        description = validation.description(version.description)
        tags = validation.tags(
            [{"key": k, "value": v} for k, v in version.tags.items()],
            key=validation.version_tag_key,
        )
        stage = validation.stage(version.current_stage)
        if version.version < 1:
            raise RegistryError.invalid(f"Version number {version.version} is not positive.")
    except RegistryError as exc:
        return outcome("failed", exc.message)
    source = fingerprint(_version_state(description, dict(tags), str(stage)))

    def write() -> Outcome:
        registered_model = (
            RegisteredModel.objects.select_for_update().filter(name=version.name).first()
        )
        if registered_model is None:
            if dry_run:
                return outcome("imported")
            return outcome("failed", "its registered model was not imported")
        now = timezone.now()  # after the lock: the trail's order is the lock's
        record = _record_of(registered_model, ImportedKind.VERSION, version.version)
        model_version = registered_model.versions.filter(version=version.version).first()
        if model_version is None:
            if record is not None:
                return outcome("conflict", "deleted here since it was imported")
            if version.version <= registered_model.last_version_number:
                return outcome(
                    "conflict",
                    f"number {version.version} was already given out here (the model's "
                    f"highest is {registered_model.last_version_number})",
                )
            try:
                fields = _version_fields(version, artifacts)
            except RegistryError as exc:
                return outcome("failed", exc.message)
            user, user_name = _creator(version.user_id)
            model_version = ModelVersion.objects.create(
                registered_model=registered_model,
                version=version.version,
                description=description,
                current_stage=stage,
                created_by=user,
                created_by_name=user_name,
                created_at=version.created_at or now,
                updated_at=version.updated_at or now,
                **fields,
            )
            ModelVersionTag.objects.bulk_create(
                ModelVersionTag(model_version=model_version, key=k, value=v) for k, v in tags
            )
            registered_model.last_version_number = version.version
            registered_model.save(update_fields=["last_version_number"])
            model_version.registered_model = registered_model
            record_tag_changes(
                actor=None,
                model_version=model_version,
                changes=((k, None, v) for k, v in tags),
                cause=TagChangeCause.IMPORTED,
                at=now,
            )
            _trail(model_version, from_stage="", to_stage=stage, source_url=source_url, at=now)
            if model_version.status == ModelVersionStatus.PENDING_REGISTRATION:
                artifact_services.model_version_copy_schedule(model_version=model_version)
            result: Result = "imported"
            detail = {"source_uri": fields["source"], "artifacts": artifacts, "stage": stage}
        else:
            model_version.registered_model = registered_model
            local_state = _local_version_state(model_version)
            local = fingerprint(local_state)
            decided = _decide(record, local, source)
            if decided is not None:
                if decided[0] == "unchanged" and record is None:
                    if model_version.source != version.source:
                        return outcome("conflict", "exists here with another source")
                    _record(
                        record=None,
                        registered_model=registered_model,
                        kind=ImportedKind.VERSION,
                        version=version.version,
                        source_url=source_url,
                        source=source,
                        local=local,
                        at=now,
                    )
                return outcome(*decided)
            from_stage = str(model_version.current_stage)
            model_version.description = description
            model_version.current_stage = stage
            model_version.updated_at = version.updated_at or now
            model_version.save(update_fields=["description", "current_stage", "updated_at"])
            ModelVersionTag.objects.filter(model_version=model_version).delete()
            ModelVersionTag.objects.bulk_create(
                ModelVersionTag(model_version=model_version, key=k, value=v) for k, v in tags
            )
            old_tags: dict[str, str] = local_state["tags"]
            new_tags = dict(tags)
            record_tag_changes(
                actor=None,
                model_version=model_version,
                changes=(
                    (key, old_tags.get(key), new_tags.get(key))
                    for key in sorted(old_tags.keys() | new_tags.keys())
                    if old_tags.get(key) != new_tags.get(key)
                ),
                cause=TagChangeCause.IMPORTED,
                at=now,
            )
            if from_stage != stage:
                _trail(
                    model_version,
                    from_stage=from_stage,
                    to_stage=stage,
                    source_url=source_url,
                    at=now,
                )
            result = "updated"
            detail = {"stage": stage, "previous_stage": from_stage}
        _record(
            record=record,
            registered_model=registered_model,
            kind=ImportedKind.VERSION,
            version=version.version,
            source_url=source_url,
            source=source,
            local=fingerprint(_local_version_state(model_version)),
            at=now,
        )
        _audit(
            registered_model,
            source_url,
            "version",
            "created" if result == "imported" else result,
            version=version.version,
            **detail,
        )
        return outcome(result)

    return _run(write, dry_run=dry_run)


def _trail(
    model_version: ModelVersion, *, from_stage: str, to_stage: str, source_url: str, at: datetime
) -> None:
    """The import on the version's trail and on the stages' history."""
    record_activity(
        actor=None,
        model_version=model_version,
        activity_type=ActivityType.SYSTEM_TRANSITION,
        from_stage=from_stage,
        to_stage=to_stage,
        system_comment=f"Imported from {source_url}.",
        at=at,
    )
    record_stage_move(
        actor=None,
        registered_model=model_version.registered_model,
        model_version=model_version,
        from_stage=from_stage or Stage.NONE,
        to_stage=to_stage,
        cause=PointerCause.IMPORTED,
        at=at,
    )


def import_aliases(*, source_url: str, model: SourceModel, dry_run: bool = False) -> Outcome:
    """The model's aliases as the source has them, once its versions are here. An alias of a
    version that is not here (not imported, failed) is left out and named in the reason."""

    def outcome(result: Result, reason: str = "") -> Outcome:
        return Outcome("aliases", model.name, 0, result, reason)

    try:
        aliases = {
            validation.alias_name(alias, for_set=True): number
            for alias, number in model.aliases.items()
        }
    except RegistryError as exc:
        return outcome("failed", exc.message)

    def write() -> Outcome:
        registered_model = (
            RegisteredModel.objects.select_for_update().filter(name=model.name).first()
        )
        if registered_model is None:
            if dry_run:
                return outcome("imported" if aliases else "unchanged")
            return outcome("failed", "its registered model was not imported")
        now = timezone.now()
        record = _record_of(registered_model, ImportedKind.ALIASES)
        current = _local_aliases(registered_model)
        versions = {
            v.version: v
            for v in registered_model.versions.filter(version__in=set(aliases.values()))
        }
        missing = sorted(f"@{a} (version {n})" for a, n in aliases.items() if n not in versions)
        # What can be written now: an alias whose version is not here yet is not, and the
        # next run, seeing the source differ from that, writes it once its version is here.
        applicable = {alias: n for alias, n in aliases.items() if n in versions}
        source = fingerprint({"aliases": applicable})
        if record is None and current and current != applicable:
            return outcome("conflict", "the model has other aliases here, not imported")
        if record is not None:
            decided = _decide(record, fingerprint({"aliases": current}), source)
            if decided is not None:
                return outcome(*decided)
        changed = False
        for alias in sorted(set(current) | set(aliases)):
            wanted = aliases.get(alias)
            target = versions.get(wanted) if wanted is not None else None
            if current.get(alias) == (target.version if target else None):
                continue
            if wanted is not None and target is None:
                continue  # its version is not here: left out
            existing = RegisteredModelAlias.objects.filter(
                registered_model=registered_model, alias=alias
            ).first()
            if target is None:
                if existing is not None:
                    existing.delete()
            elif existing is None:
                RegisteredModelAlias.objects.create(
                    registered_model=registered_model, alias=alias, model_version=target
                )
            else:
                existing.model_version = target
                existing.save(update_fields=["model_version"])
            if target is not None:
                target.registered_model = registered_model
            record_alias_move(
                actor=None,
                registered_model=registered_model,
                alias=alias,
                from_version=current.get(alias),
                to_version=target,
                cause=PointerCause.IMPORTED,
                at=now,
                comment=f"Imported from {source_url}.",
            )
            changed = True
        _record(
            record=record,
            registered_model=registered_model,
            kind=ImportedKind.ALIASES,
            version=0,
            source_url=source_url,
            source=source,
            local=fingerprint({"aliases": _local_aliases(registered_model)}),
            at=now,
        )
        reason = ("left out, their versions are not here: " + ", ".join(missing)) if missing else ""
        if not changed:
            return outcome("unchanged" if not missing else "skipped", reason)
        _audit(
            registered_model, source_url, "aliases", "set", aliases=_local_aliases(registered_model)
        )
        return outcome("imported" if record is None else "updated", reason)

    return _run(write, dry_run=dry_run)


def import_run_record(*, source_url: str, counts: dict[str, int], options: dict[str, Any]) -> None:
    """The end of a run, on the audit log (registry-wide)."""
    AuditEntry.objects.record(
        action=AuditEntry.Action.IMPORT_RUN,
        registered_model=None,
        actor=None,
        detail={"source": source_url, "counts": counts, "options": options},
    )


def reserve_version_numbers(
    *, source_url: str, name: str, highest: int, dry_run: bool = False
) -> Outcome:
    """Count the numbers up to ``highest`` as given out for the model (``--reserve``): the
    source's deleted versions above its highest remaining one, which the protocol does not
    show (docs/migrating.md), are then never given out here."""

    def outcome(result: Result, reason: str = "") -> Outcome:
        return Outcome("reserve", name, 0, result, reason)

    def write() -> Outcome:
        registered_model = RegisteredModel.objects.select_for_update().filter(name=name).first()
        if registered_model is None:
            return outcome("imported" if dry_run else "failed", "the model is not here")
        before = registered_model.last_version_number
        if before >= highest:
            return outcome("unchanged", f"numbers up to {before} are already given out")
        registered_model.last_version_number = highest
        registered_model.save(update_fields=["last_version_number"])
        _audit(
            registered_model,
            source_url,
            "version numbers",
            "reserved",
            previous_highest=before,
            highest=highest,
        )
        return outcome("updated", f"numbers up to {highest} reserved")

    return _run(write, dry_run=dry_run)
