"""Reads of the accounts app: a user's tokens and the permissions on a registered model."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from django.db.models import QuerySet

from accounts import permissions
from accounts.models import ApiToken, PermissionLevel, RegisteredModelGrant
from accounts.permissions import Level
from kernel.errors import RegistryError

if TYPE_CHECKING:
    from registry.models import RegisteredModel

REGISTRY_ROOT = "/registered-models/"

LEVEL_DESCRIPTIONS = {
    PermissionLevel.CAN_READ: "Can view the model, its versions and activities, and use them.",
    PermissionLevel.CAN_EDIT: "Can read, edit descriptions and tags, and add versions.",
    PermissionLevel.CAN_MANAGE_STAGING_VERSIONS: (
        "Can edit, and move versions between None, Staging and Archived."
    ),
    PermissionLevel.CAN_MANAGE_PRODUCTION_VERSIONS: (
        "Can edit, and move versions between any stages, Production included."
    ),
    PermissionLevel.CAN_MANAGE: (
        "Can do everything, including renaming, deleting and changing permissions."
    ),
}


def api_token_list(*, actor: Any) -> QuerySet[ApiToken]:
    """The actor's own tokens, newest first (secrets are never stored, so never shown)."""
    return ApiToken.objects.filter(user=actor).order_by("-created_at", "-id")


def registered_model_by_id(model_id: Any) -> RegisteredModel:
    """A registered model by its public id (the 32-hex ``id`` of the Databricks API)."""
    from registry.models import RegisteredModel

    try:
        code = uuid.UUID(str(model_id))
        return RegisteredModel.objects.get(code=code)
    except (ValueError, RegisteredModel.DoesNotExist):
        raise RegistryError.not_found(f"Registered model with id {model_id} not found.") from None


def permission_levels(*, actor: Any, registered_model: RegisteredModel) -> list[dict[str, str]]:
    permissions.require_level(actor, registered_model, Level.CAN_READ, action="read")
    return [
        {"permission_level": level, "description": LEVEL_DESCRIPTIONS[PermissionLevel(level)]}
        for level in PermissionLevel.values
    ]


def registered_model_access_control_list(
    *, actor: Any, registered_model: RegisteredModel
) -> list[dict[str, Any]]:
    """The model's grants in the Databricks shape, for a caller who manages the model."""
    permissions.require_level(
        actor, registered_model, Level.CAN_MANAGE, action="view the permissions of"
    )
    return access_control_list(registered_model)


def access_control_list(registered_model: RegisteredModel) -> list[dict[str, Any]]:
    """The model's grants, unchecked: what the registry admins and every signed-in user hold
    through the registry root, then the direct grants."""
    entries: list[dict[str, Any]] = [
        {
            "group_name": "admins",
            "all_permissions": [
                {
                    "permission_level": PermissionLevel.CAN_MANAGE,
                    "inherited": True,
                    "inherited_from_object": [REGISTRY_ROOT],
                }
            ],
        }
    ]
    default = permissions.default_level()
    if default > Level.NONE:
        entries.append(
            {
                "group_name": "users",
                "all_permissions": [
                    {
                        "permission_level": default.name,
                        "inherited": True,
                        "inherited_from_object": [REGISTRY_ROOT],
                    }
                ],
            }
        )
    grants = RegisteredModelGrant.objects.filter(registered_model=registered_model).select_related(
        "user", "group"
    )
    for grant in grants:
        permission = [{"permission_level": grant.level, "inherited": False}]
        if grant.user is not None:
            entries.append(
                {
                    "user_name": grant.user.get_username(),
                    "display_name": grant.user.get_full_name() or grant.user.get_username(),
                    "all_permissions": permission,
                }
            )
        else:
            # A grant names a user or a group, never both (the grant_user_xor_group constraint).
            assert grant.group is not None
            entries.append({"group_name": grant.group.name, "all_permissions": permission})
    return entries
