"""The history of aliases and stages (``PointerMove``, append-only): every alias set, moved or
deleted, and every version entering or leaving a stage, written in the transaction of the
change, under the model's row lock, with the time taken after the lock, so the history's order
is the order the changes were applied (docs/decisions/0015-governed-aliases.md). Every move that
reaches a version gets its signed promotion record here too (``services.provenance``), so no
path that moves a stage or an alias can leave one out. The history of version tags
(``VersionTagChange``) is written here too, by every path that writes a version's tags."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

from accounts import permissions
from accounts.models import User
from registry.models import (
    ModelVersion,
    PointerCause,
    PointerKind,
    PointerMove,
    PromotionRecord,
    RegisteredModel,
    Stage,
    TagChangeCause,
    VersionTagChange,
)
from registry.services.provenance import promotion_record_write


def record_alias_move(
    *,
    actor: User | None,
    registered_model: RegisteredModel,
    alias: str,
    from_version: int | None,
    to_version: ModelVersion | None,
    cause: PointerCause,
    at: datetime,
    request_code: uuid.UUID | None = None,
    comment: str = "",
) -> PointerMove:
    """Write the history entry of an alias move, and, when it reaches a version, its signed
    record (``move.promotion_record``, None when not signed)."""
    move = PointerMove.objects.create(
        registered_model_id=registered_model.pk,
        model_name=registered_model.name,
        kind=PointerKind.ALIAS,
        pointer=alias,
        from_version=from_version,
        to_version=to_version.version if to_version is not None else None,
        artifact_digest=to_version.artifact_digest if to_version is not None else "",
        cause=cause,
        request_code=request_code,
        comment=comment,
        actor_username=permissions.acting_username(actor),
        created_at=at,
    )
    move.promotion_record = (
        promotion_record_write(
            actor=actor,
            registered_model=registered_model,
            model_version=to_version,
            kind=PointerKind.ALIAS,
            pointer=alias,
            moved_from=str(from_version) if from_version is not None else "",
            cause=cause,
            at=at,
            request_code=request_code,
            comment=comment,
        )
        if to_version is not None
        else None
    )
    return move


def stage_moves(
    *,
    actor: User | None,
    registered_model: RegisteredModel,
    model_version: ModelVersion,
    from_stage: str,
    to_stage: str,
    cause: PointerCause,
    at: datetime,
    request_code: uuid.UUID | None = None,
) -> list[PointerMove]:
    """The entries of one version moving between stages, unsaved: it leaves ``from_stage`` and
    reaches ``to_stage`` ("" when it is deleted). The stage None names nothing and has none."""
    common = {
        "registered_model_id": registered_model.pk,
        "model_name": registered_model.name,
        "kind": PointerKind.STAGE,
        "cause": cause,
        "request_code": request_code,
        "actor_username": permissions.acting_username(actor),
        "created_at": at,
    }
    entries = []
    if from_stage and from_stage != Stage.NONE:
        entries.append(
            PointerMove(pointer=from_stage, from_version=model_version.version, **common)
        )
    if to_stage and to_stage != Stage.NONE:
        entries.append(
            PointerMove(
                pointer=to_stage,
                to_version=model_version.version,
                artifact_digest=model_version.artifact_digest,
                **common,
            )
        )
    return entries


def record_stage_move(
    *,
    actor: User | None,
    registered_model: RegisteredModel,
    model_version: ModelVersion,
    from_stage: str,
    to_stage: str,
    cause: PointerCause,
    at: datetime,
    request_code: uuid.UUID | None = None,
    comment: str = "",
) -> PromotionRecord | None:
    """Write :func:`stage_moves`, and the signed record of the version reaching ``to_stage``
    (None when not signed)."""
    if from_stage == to_stage:
        return None
    PointerMove.objects.bulk_create(
        stage_moves(
            actor=actor,
            registered_model=registered_model,
            model_version=model_version,
            from_stage=from_stage,
            to_stage=to_stage,
            cause=cause,
            at=at,
            request_code=request_code,
        )
    )
    if not to_stage:
        return None
    return promotion_record_write(
        actor=actor,
        registered_model=registered_model,
        model_version=model_version,
        kind=PointerKind.STAGE,
        pointer=to_stage,
        moved_from=from_stage,
        cause=cause,
        at=at,
        request_code=request_code,
        comment=comment,
    )


def record_tag_changes(
    *,
    actor: User | None,
    model_version: ModelVersion,
    changes: Iterable[tuple[str, str | None, str | None]],
    cause: TagChangeCause,
    at: datetime,
) -> None:
    """Write the history of the version's tags that changed, ``(key, old value, new value)``
    each (None: no tag), in one INSERT, none when nothing changed
    (docs/decisions/0022-version-tag-history.md). ``model_version.registered_model`` is loaded."""
    registered_model = model_version.registered_model
    actor_username = permissions.acting_username(actor)
    VersionTagChange.objects.bulk_create(
        VersionTagChange(
            registered_model_id=registered_model.pk,
            model_name=registered_model.name,
            version=model_version.version,
            key=key,
            old_value=old_value,
            new_value=new_value,
            cause=cause,
            actor_username=actor_username,
            created_at=at,
        )
        for key, old_value, new_value in changes
        if old_value is not None or new_value is not None
    )
