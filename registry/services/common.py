"""What the registry's services share: the row locks that serialise changes to a model, the
activity trail, and the acting user as it is recorded."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connections, transaction
from django.db.models import Field, Model, QuerySet
from django.db.models.sql import UpdateQuery

from accounts import permissions
from accounts.models import User
from accounts.permissions import Level
from registry.errors import model_version_not_found, registered_model_not_found
from registry.models import Activity, ActivityType, ModelVersion, RegisteredModel, TransitionRequest

COMMENT_MAX_LENGTH = 65_535


def lock_registered_model(name: str) -> RegisteredModel:
    """The registered model, locked FOR UPDATE until the end of the current transaction."""
    try:
        return RegisteredModel.objects.select_for_update().get(name=name)
    except RegisteredModel.DoesNotExist:
        raise registered_model_not_found(name) from None


def lock_model_version(
    name: str, version: int, *, actor: User | None, level: Level | None, action: str
) -> tuple[RegisteredModel, ModelVersion]:
    """The locked model (after checking ``level`` on it, unless None) and its version."""
    registered_model = lock_registered_model(name)
    if level is not None:
        permissions.require_level(actor, registered_model, level, action=action)
    try:
        model_version = registered_model.versions.get(version=version)
    except ModelVersion.DoesNotExist:
        raise model_version_not_found(name, version) from None
    model_version.registered_model = registered_model
    return registered_model, model_version


def actor_or_none(actor: User | None) -> User | None:
    return actor if actor is not None and actor.is_authenticated else None


def activity_row(
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
    """An entry of the version's trail, unsaved: :func:`record_activity` writes one, a change
    that writes several gives them to ``Activity.objects.append`` together."""
    actor = actor_or_none(actor)
    return Activity(
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


def record_activity(
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
    model_locked: bool = False,
) -> Activity:
    """Write one entry of the version's trail (``model_locked``: the caller holds the model's
    row lock, taken in this transaction; ``Activity.objects.append``)."""
    (activity,) = Activity.objects.append(
        [
            activity_row(
                actor=actor,
                model_version=model_version,
                activity_type=activity_type,
                at=at,
                from_stage=from_stage,
                to_stage=to_stage,
                comment=comment,
                system_comment=system_comment,
                request=request,
            )
        ],
        model_locked=model_locked,
    )
    return activity


def update_returning(
    queryset: QuerySet[Any], values: dict[str, Any], *, returning: Iterable[str]
) -> list[tuple[Any, ...]]:
    """``queryset.update(**values)`` in one ``UPDATE ... RETURNING`` statement (PostgreSQL,
    and SQLite since 3.35): the rows it changed, each as the tuple of the ``returning`` fields
    converted as the ORM would (docs/decisions/0021-writes-in-fewer-statements.md). Only for
    filters on the table's own columns, as ``update`` itself without joins."""
    model: type[Model] = queryset.model
    query = queryset.query.chain(UpdateQuery)
    assert isinstance(query, UpdateQuery)
    query.add_update_values(values)
    try:
        statement, params = query.get_compiler(queryset.db).as_sql()
    except EmptyResultSet:  # a filter that matches nothing (``pk__in=[]``)
        return []
    if not statement:
        return []
    connection = connections[queryset.db]
    fields = [model._meta.get_field(name) for name in returning]
    assert all(isinstance(field, Field) and field.column for field in fields)
    columns = ", ".join(
        connection.ops.quote_name(str(field.column))  # type: ignore[union-attr]
        for field in fields
    )
    with transaction.mark_for_rollback_on_error(using=queryset.db), connection.cursor() as cursor:
        cursor.execute(f"{statement} RETURNING {columns}", params)
        rows = cursor.fetchall()
    return [
        tuple(
            field.to_python(value)  # type: ignore[union-attr]
            for field, value in zip(fields, row, strict=True)
        )
        for row in rows
    ]
