"""What the registry's services share: the row locks that serialise changes to a model, the
activity trail, and the acting user as it is recorded."""

from __future__ import annotations

from typing import Any

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
) -> Activity:
    actor = actor_or_none(actor)
    (activity,) = Activity.objects.append(
        [
            Activity(
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
        ]
    )
    return activity
