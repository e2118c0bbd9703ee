"""Every permission decision of the registry, in one place (docs/architecture.md, "Accounts").

Services call these functions before they change or reveal anything, so the API, the web UI,
the admin and Celery tasks obey the same rules. The rules are the Databricks Workspace Model
Registry's: five cumulative levels per registered model, granted to users and groups, with a
registry-wide default for signed-in users; superusers are registry admins; the creator of a
model manages it.

``actor=None`` means the registry itself (a Celery task finishing work a user already started);
it passes every check. Views always pass ``request.user``, which is never ``None``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import IntEnum
from typing import TYPE_CHECKING, Any, TypeGuard

from django.db.models import Exists, OuterRef, Q

from accounts.conf import account_settings
from accounts.models import PermissionLevel, RegisteredModelGrant, User
from kernel.errors import ErrorCode, RegistryError

if TYPE_CHECKING:
    from registry.models import (
        AliasPolicy,
        AliasRequest,
        Comment,
        RegisteredModel,
        StagePolicy,
        TransitionRequest,
    )


class Level(IntEnum):
    NONE = 0
    CAN_READ = 1
    CAN_EDIT = 2
    CAN_MANAGE_STAGING_VERSIONS = 3
    CAN_MANAGE_PRODUCTION_VERSIONS = 4
    CAN_MANAGE = 5

    @classmethod
    def of(cls, value: str) -> Level:
        return cls[value]


def _is_system(actor: Any) -> bool:
    return actor is None


def is_signed_in(actor: Any) -> TypeGuard[User]:
    return actor is not None and getattr(actor, "is_authenticated", False) and actor.is_active


def is_admin(actor: Any) -> bool:
    return _is_system(actor) or (is_signed_in(actor) and actor.is_superuser)


def default_level() -> Level:
    """What every signed-in user holds on every model (``REGISTRY_DEFAULT_PERMISSION_LEVEL``)."""
    return Level.of(account_settings().default_permission_level)


def _grant_levels(actor: Any, registered_model: RegisteredModel) -> list[Level]:
    grants = RegisteredModelGrant.objects.filter(registered_model=registered_model).filter(
        Q(user=actor) | Q(group__in=actor.groups.all())
    )
    return [Level.of(level) for level in grants.values_list("level", flat=True)]


def effective_level(actor: Any, registered_model: RegisteredModel) -> Level:
    """The highest of the actor's own grant, their groups' grants and the registry default."""
    if is_admin(actor):
        return Level.CAN_MANAGE
    if not is_signed_in(actor):
        return Level.NONE
    return max([default_level(), *_grant_levels(actor, registered_model)])


def effective_levels(actor: Any, registered_model_ids: Iterable[int]) -> dict[int, Level]:
    """:func:`effective_level` on each of these models (by primary key), in one query."""
    ids = set(registered_model_ids)
    if is_admin(actor):
        return dict.fromkeys(ids, Level.CAN_MANAGE)
    if not is_signed_in(actor):
        return dict.fromkeys(ids, Level.NONE)
    levels = dict.fromkeys(ids, default_level())
    grants = RegisteredModelGrant.objects.filter(registered_model_id__in=ids).filter(
        Q(user=actor) | Q(group__in=actor.groups.all())
    )
    for model_id, level in grants.values_list("registered_model_id", "level"):
        levels[model_id] = max(levels[model_id], Level.of(level))
    return levels


def _refuse(actor: Any, message: str) -> RegistryError:
    if not is_signed_in(actor):
        return RegistryError(ErrorCode.UNAUTHENTICATED, "Authentication is required.")
    return RegistryError(ErrorCode.PERMISSION_DENIED, message)


def require_level(
    actor: Any, registered_model: RegisteredModel, level: Level, *, action: str
) -> None:
    """Refuse unless the actor holds ``level`` on the model.

    ``action`` completes the sentence "… may not <action> registered model 'x'". When the
    registry-wide default already gives a signed-in user ``level`` (reads, with the default
    ``CAN_READ``), no grant can change the answer, so the grants are not read.
    """
    if is_admin(actor) or (is_signed_in(actor) and default_level() >= level):
        return
    require_held(
        actor, registered_model.name, effective_level(actor, registered_model), level, action=action
    )


def require_held(actor: Any, name: str, held: Level | None, level: Level, *, action: str) -> None:
    """Refuse, as :func:`require_level` does, unless ``held`` (the actor's level on model
    ``name``, read by the caller; None for a registry admin) reaches ``level``."""
    if is_admin(actor) or (held is not None and held >= level):
        return
    if held is None:
        held = Level.NONE
    raise _refuse(
        actor,
        f"User '{actor.get_username()}' may not {action} registered model "
        f"'{name}': that needs {level.name}"
        + (f" and they have {held.name}." if held else " and they have no permission on it."),
    )


def can_create_registered_model(actor: Any) -> bool:
    if is_admin(actor):
        return True
    if not is_signed_in(actor):
        return False
    groups = account_settings().model_creator_groups
    return not groups or actor.groups.filter(name__in=groups).exists()


def require_can_create_registered_model(actor: Any) -> None:
    if not can_create_registered_model(actor):
        raise _refuse(
            actor,
            f"User '{actor.get_username()}' may not create registered models: that right is "
            "limited to the groups in REGISTRY_MODEL_CREATOR_GROUPS.",
        )


def transition_level(from_stage: str, to_stage: str) -> Level:
    """The level a direct move (or deciding a request) between two stages needs."""
    if "Production" in (from_stage, to_stage):
        return Level.CAN_MANAGE_PRODUCTION_VERSIONS
    return Level.CAN_MANAGE_STAGING_VERSIONS


def require_can_transition(
    actor: Any, registered_model: RegisteredModel, from_stage: str, to_stage: str
) -> None:
    require_level(
        actor,
        registered_model,
        transition_level(from_stage, to_stage),
        action=f"move versions from {from_stage} to {to_stage} in",
    )


# --- Requests, comments and stage policies -----------------------------------------------------
#
# One function per rule. The services refuse with it; the selectors list the actions it allows
# (Databricks' ``available_actions``), passing the actor's level on the model, which they look
# up once for a whole list.


def acting_username(actor: Any) -> str:
    """The name an actor acts under: their username, or "" for the registry itself."""
    return actor.get_username() if is_signed_in(actor) else ""


def _is_user(actor: Any, username: str) -> bool:
    return is_signed_in(actor) and actor.get_username() == username


def request_cancel_level(actor: Any, requested_by: str) -> Level:
    """What cancelling a request of ``requested_by`` needs: its requester only has to read the
    model; anyone else needs CAN_MANAGE."""
    return Level.CAN_READ if _is_user(actor, requested_by) else Level.CAN_MANAGE


def can_cancel_request(actor: Any, request: TransitionRequest | AliasRequest, level: Level) -> bool:
    return level >= request_cancel_level(actor, request.requested_by_username)


def can_decide_request(request: TransitionRequest, level: Level) -> bool:
    """Approving or rejecting needs the level of the move the request asks for, from the stage
    the version is in now (:func:`require_can_transition` refuses the same)."""
    return level >= transition_level(request.model_version.current_stage, request.to_stage)


def self_approval_refused(
    approver_username: str,
    request: TransitionRequest | AliasRequest,
    policy: StagePolicy | AliasPolicy,
) -> bool:
    """The requester approving their own request, where the policy in force forbids it."""
    return approver_username == request.requested_by_username and not policy.allow_self_approval


def has_approved(actor: Any, request: TransitionRequest | AliasRequest) -> bool:
    """An approver counts once: has the actor already approved the request?"""
    name = acting_username(actor)
    return any(approval.approver_username == name for approval in request.approvals.all())


def can_approve_request(
    actor: Any, request: TransitionRequest, level: Level, policy: StagePolicy
) -> bool:
    """Deciding (:func:`can_decide_request`), unless the policy refuses a self-approval or the
    actor has already approved."""
    return (
        can_decide_request(request, level)
        and not self_approval_refused(acting_username(actor), request, policy)
        and not has_approved(actor, request)
    )


def can_edit_comment(actor: Any, comment: Comment) -> bool:
    """Only a comment's author edits it."""
    return _is_user(actor, comment.author_username)


def comment_delete_level(actor: Any, comment: Comment) -> Level:
    """What deleting a comment needs: nothing more for its author, CAN_MANAGE for others."""
    return Level.NONE if can_edit_comment(actor, comment) else Level.CAN_MANAGE


def can_delete_comment(actor: Any, comment: Comment, level: Level) -> bool:
    return level >= comment_delete_level(actor, comment)


def require_can_change_policies(
    actor: Any, registered_model: RegisteredModel | None, *, kind: str = "stage"
) -> None:
    """A model's stage (or alias) policies need CAN_MANAGE on it; the registry-wide ones
    (``None``) an admin."""
    if registered_model is not None:
        require_level(
            actor, registered_model, Level.CAN_MANAGE, action=f"change the {kind} policies of"
        )
    elif not is_admin(actor):
        raise RegistryError(
            ErrorCode.PERMISSION_DENIED if is_signed_in(actor) else ErrorCode.UNAUTHENTICATED,
            f"Only registry admins change the registry-wide {kind} policies.",
        )


def require_can_import(actor: Any) -> None:
    """Imports from another registry (docs/migrating.md) write past every policy: admins only,
    and only admins see them."""
    if not is_admin(actor):
        raise RegistryError(
            ErrorCode.PERMISSION_DENIED if is_signed_in(actor) else ErrorCode.UNAUTHENTICATED,
            "Only registry admins import from another registry.",
        )


def readable_models_q(actor: Any, *, model_field: str = "pk") -> Q:
    """A filter that keeps what the actor can read: on registered models as it is, on versions
    with ``model_field="registered_model_id"``."""
    if is_admin(actor):
        return Q()
    if not is_signed_in(actor):
        return Q(pk__in=[])
    if default_level() >= Level.CAN_READ:
        return Q()
    grants = RegisteredModelGrant.objects.filter(registered_model=OuterRef(model_field)).filter(
        Q(user=actor) | Q(group__in=actor.groups.all())
    )
    return Q(Exists(grants))


def require_can_upload_artifacts(actor: Any) -> None:
    """Uploads come before a version exists: any user who may create models or versions."""
    if is_admin(actor) or can_create_registered_model(actor):
        return
    if is_signed_in(actor):
        grants = RegisteredModelGrant.objects.filter(
            Q(user=actor) | Q(group__in=actor.groups.all())
        ).values_list("level", flat=True)
        if any(Level.of(level) >= Level.CAN_EDIT for level in grants) or (
            default_level() >= Level.CAN_EDIT
        ):
            return
    raise _refuse(actor, "Uploading artifacts needs the right to create models or versions.")


# Django's username rule (letters, digits and @.+-_): a name that fits it is one path segment.
_AREA_NAME = re.compile(r"^[\w.@+-]+\Z")


def own_upload_area(actor: Any) -> str | None:
    """The name of the actor's own area under ``uploads/``: their username, where it can be one
    path segment (usernames made outside Django's forms, say with a ``/``, have none)."""
    if not is_signed_in(actor):
        return None
    username = actor.get_username()
    if username in (".", "..") or not _AREA_NAME.match(username):
        return None
    return username


def upload_area_hint(actor: Any) -> str:
    """Where the actor's own uploads go, for refusals."""
    area = own_upload_area(actor)
    if area is None:
        return (
            f"user '{actor.get_username()}' has no upload area: a username of letters, digits "
            "and @.+-_ only is needed for one"
        )
    return f"yours is uploads/{area}/"


def require_upload_area(actor: Any, area: str, *, action: str, admins_may: bool = False) -> None:
    """Refuse unless ``uploads/<area>/`` is the actor's own area. Each user's uploads are
    theirs alone: another user could otherwise replace the files someone is about to register,
    or read what they staged for a private model. With ``admins_may``, registry admins pass
    too (reading and deleting, to clean up); nobody writes or registers another user's files.
    """
    if not is_signed_in(actor) and not _is_system(actor):
        raise _refuse(actor, "")
    if area == own_upload_area(actor) or (admins_may and is_admin(actor)):
        return
    if _is_system(actor):
        raise RegistryError(
            ErrorCode.PERMISSION_DENIED,
            f"Cannot {action} uploads/{area}/: uploaded files are used only by the user who "
            "uploaded them.",
        )
    raise RegistryError(
        ErrorCode.PERMISSION_DENIED,
        f"User '{actor.get_username()}' may not {action} uploads/{area}/: each user uploads, "
        "lists, reads, deletes and registers files only in their own area, uploads/<username>/"
        + (" (registry admins may also read and delete in any area)" if admins_may else "")
        + f"; {upload_area_hint(actor)}.",
    )


# --- Aliases ----------------------------------------------------------------------------------
# Who may move an alias directly and who may decide its requests (docs/decisions/0015). The
# alias policy in force may be a model's own tightened by the registry-wide one (its floor):
# every stored part that protects the alias must name the actor for a direct move.

#: Deciding an alias request needs this level, unless the policy lets the decider move the
#: alias directly: an alias names what serves, as Production does.
ALIAS_DECIDE_LEVEL = Level.CAN_MANAGE_PRODUCTION_VERSIONS


def group_names(actor: Any) -> set[str]:
    """The names of the actor's groups (one query), for the alias rules below."""
    if not is_signed_in(actor):
        return set()
    return set(actor.groups.values_list("name", flat=True))


def alias_policy_parts(policy: AliasPolicy) -> list[AliasPolicy]:
    """The stored policies a policy in force stands for: the model's own and the registry-wide
    one when it was merged, else itself."""
    floor = getattr(policy, "floor", None)
    return [policy.own, floor] if floor is not None else [policy]  # type: ignore[attr-defined]


def _alias_part_names(actor: Any, part: AliasPolicy, groups: set[str]) -> bool:
    if not part.protected:
        return True
    return acting_username(actor) in part.direct_users or not groups.isdisjoint(part.direct_groups)


def may_move_alias_directly(
    actor: Any, policy: AliasPolicy, level: Level, groups: set[str]
) -> bool:
    """Set, move or delete the alias without a request: CAN_EDIT, and every part of the policy
    that protects the alias names the actor (by username or group). The registry itself
    (``actor=None``) may."""
    if _is_system(actor):
        return True
    return level >= Level.CAN_EDIT and all(
        _alias_part_names(actor, part, groups) for part in alias_policy_parts(policy)
    )


def can_decide_alias_request(
    actor: Any, policy: AliasPolicy, level: Level, groups: set[str]
) -> bool:
    """Approve or reject an alias request: ``ALIAS_DECIDE_LEVEL``, or the right to make the
    move directly."""
    return level >= ALIAS_DECIDE_LEVEL or may_move_alias_directly(actor, policy, level, groups)


def can_approve_alias_request(
    actor: Any, request: AliasRequest, policy: AliasPolicy, level: Level, groups: set[str]
) -> bool:
    """Deciding, unless the policy refuses a self-approval or the actor has already approved."""
    return (
        can_decide_alias_request(actor, policy, level, groups)
        and not self_approval_refused(acting_username(actor), request, policy)
        and not has_approved(actor, request)
    )


def require_can_decide_alias_request(
    actor: Any,
    registered_model: RegisteredModel,
    alias: str,
    policy: AliasPolicy,
    groups: set[str],
) -> None:
    if is_admin(actor):
        return
    level = effective_level(actor, registered_model)
    if not can_decide_alias_request(actor, policy, level, groups):
        raise _refuse(
            actor,
            f"User '{acting_username(actor)}' may not decide requests to move alias "
            f"'{alias}' of registered model '{registered_model.name}': that needs "
            f"{ALIAS_DECIDE_LEVEL.name}, or what moving it directly needs (CAN_EDIT, and to "
            f"be named by the alias policy if it protects the alias); they have {level.name}.",
        )


# --- Webhooks ---------------------------------------------------------------------------------
# Who may manage a hook (create, change, delete, test it, read and redeliver its deliveries):
# the webhooks services refuse with require_can_manage_webhook, the selectors list with
# manageable_webhooks_q; the two say the same thing.


def require_can_manage_webhook(actor: Any, registered_model: RegisteredModel | None) -> None:
    """Model-specific hooks need CAN_MANAGE on the model; registry-wide hooks need an admin."""
    if registered_model is not None:
        require_level(actor, registered_model, Level.CAN_MANAGE, action="manage webhooks of")
        return
    if not is_admin(actor):
        code = (
            ErrorCode.PERMISSION_DENIED
            if getattr(actor, "is_authenticated", False)
            else ErrorCode.UNAUTHENTICATED
        )
        raise RegistryError(code, "Registry-wide webhooks can be managed only by registry admins.")


def manageable_webhooks_q(actor: Any) -> Q:
    """A filter on webhooks that keeps those the actor may manage: all for admins, else those
    of models they manage."""
    if is_admin(actor):
        return Q()
    if not is_signed_in(actor):
        return Q(pk__in=[])
    if default_level() >= Level.CAN_MANAGE:
        return Q(registered_model__isnull=False)
    managed = RegisteredModelGrant.objects.filter(level=PermissionLevel.CAN_MANAGE).filter(
        Q(user=actor) | Q(group__in=actor.groups.all())
    )
    return Q(registered_model__in=managed.values("registered_model"))
