"""Writes of the accounts app: API tokens and permission grants on registered models."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts import permissions, selectors, tokens
from accounts.conf import account_settings
from accounts.models import ApiToken, PermissionLevel, RegisteredModelGrant
from accounts.permissions import Level
from kernel.errors import ErrorCode, RegistryError

if TYPE_CHECKING:
    from registry.models import RegisteredModel

# A token's last-used time is written at most this often, so busy clients cost no write per call.
LAST_USED_RESOLUTION = timedelta(seconds=60)
TOKEN_NAME_MAX_LENGTH = 100
MAX_TOKEN_LIFETIME_DAYS = 3650


@dataclass(frozen=True)
class CreatedToken:
    token: ApiToken
    secret: str  # shown once, never stored


def _require_signed_in(actor: Any) -> None:
    if not permissions.is_signed_in(actor):
        raise RegistryError(ErrorCode.UNAUTHENTICATED, "Authentication is required.")


def api_token_create(
    *,
    actor: Any,
    user: Any = None,
    name: Any,
    expires_in_days: Any = None,
    credential: ApiToken | None = None,
) -> CreatedToken:
    """A new token for ``user`` (default: the actor). Only admins create tokens for others.

    ``credential`` is the API token the request was signed in with (None for a password or a
    session). A token is then no stronger than a password only if what it creates cannot
    outlive it: ``_lifetime_within`` refuses a longer or endless lifetime, and the new token
    is linked to it, so revoking it revokes the new one too."""
    if actor is not None:
        _require_signed_in(actor)
    owner = user or actor
    if owner != actor and not permissions.is_admin(actor):
        raise RegistryError(
            ErrorCode.PERMISSION_DENIED, "Only registry admins create tokens for other users."
        )
    if not isinstance(name, str) or not name.strip():
        raise RegistryError.invalid("Missing value for required parameter 'name'.")
    if len(name) > TOKEN_NAME_MAX_LENGTH:
        raise RegistryError.invalid(
            f"Token name is {len(name)} characters long; the limit is {TOKEN_NAME_MAX_LENGTH}."
        )
    expires_at = None
    if expires_in_days is not None:
        if isinstance(expires_in_days, bool) or not isinstance(expires_in_days, int):
            raise RegistryError.invalid("Parameter 'expires_in_days' must be an integer.")
        if not 1 <= expires_in_days <= MAX_TOKEN_LIFETIME_DAYS:
            raise RegistryError.invalid(
                f"Parameter 'expires_in_days' must be between 1 and {MAX_TOKEN_LIFETIME_DAYS}."
            )
        expires_at = timezone.now() + timedelta(days=expires_in_days)
    if credential is not None:
        expires_at = _lifetime_within(credential, expires_in_days, expires_at)
    secret = tokens.generate()
    with transaction.atomic():
        if credential is not None:
            # Revoking the credential locks its owner's row (api_token_revoke); an admin's token
            # creating one for someone else must wait for that lock too, or the new token could
            # commit after the revocation collected what to revoke. Both rows, in one order.
            list(
                get_user_model()
                .objects.select_for_update()
                .filter(pk__in={owner.pk, credential.user_id})
                .order_by("pk")
            )
        if actor is not None:
            _check_token_creation_rate(owner)
        if credential is not None and not _still_active(credential):
            # Revoked while this request ran: revocation holds the same lock (api_token_revoke).
            raise RegistryError(
                ErrorCode.UNAUTHENTICATED, "The API token of this request has been revoked."
            )
        token = ApiToken.objects.create(
            user=owner,
            name=name.strip(),
            prefix=secret[: tokens.VISIBLE_PREFIX_LENGTH],
            digest=tokens.digest(secret),
            expires_at=expires_at,
            created_with=credential,
        )
    return CreatedToken(token=token, secret=secret)


def _lifetime_within(credential: ApiToken, expires_in_days: int | None, expires_at: Any) -> Any:
    """The new token's expiry when a token creates it: no later than the creating token's.

    A never-expiring token may create any token. From an expiring one, no expiry or a number of
    days that ends after it is refused (not silently shortened: a program asking for a year
    would otherwise find out when the token stops working). The last part of a day is rounded
    in the caller's favour: the number of days that covers the creating token's remaining life
    is accepted, and the new token then expires with it.
    """
    ceiling = credential.expires_at
    if ceiling is None:
        return expires_at
    remaining = ceiling - timezone.now()
    longest = math.ceil(remaining / timedelta(days=1))
    if expires_in_days is None or expires_in_days > longest:
        asked = "no expiry" if expires_in_days is None else f"expires_in_days={expires_in_days}"
        raise RegistryError(
            ErrorCode.PERMISSION_DENIED,
            f"A request signed in with an API token can only create tokens that expire no "
            f"later than that token, which expires at {ceiling:%Y-%m-%d %H:%M:%S} UTC; "
            f"{asked} is refused. Ask for expires_in_days of at most {longest}, or sign in "
            "with your password to create a longer-lived token.",
        )
    return min(expires_at, ceiling)


def _still_active(token: ApiToken) -> bool:
    return ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).exists()


def _check_token_creation_rate(owner: Any) -> None:
    """Refuse a token beyond ``TOKEN_CREATE_LIMIT`` for one user within the window.

    A stolen password or session could otherwise mint tokens by the thousand, each a way back
    in after the password is changed. Counted from the tokens table itself (revoked tokens
    included, so revoking does not reset the count), under a lock on the owner's row so
    concurrent requests cannot both take the last place. The ``create_token`` command (an
    operator on the host, ``actor=None``) is not limited.
    """
    limit = account_settings().token_create_limit
    window = account_settings().token_create_window_seconds
    get_user_model().objects.select_for_update().filter(pk=owner.pk).first()
    since = timezone.now() - timedelta(seconds=window)
    if ApiToken.objects.filter(user=owner, created_at__gte=since).count() >= limit:
        raise RegistryError(
            ErrorCode.REQUEST_LIMIT_EXCEEDED,
            f"{owner.get_username()} was given {limit} API tokens within the last "
            f"{window} seconds, the most allowed; try again later or reuse a token.",
        )


def api_token_revoke(*, actor: Any, token_id: Any) -> ApiToken:
    """Revoke one of the actor's tokens (admins: anyone's), and every token created by a
    request signed in with it, down the line. Revoking twice is harmless."""
    _require_signed_in(actor)
    mine = Q(user=actor) if not permissions.is_admin(actor) else Q()
    try:
        code = uuid.UUID(str(token_id))
        token = ApiToken.objects.filter(mine).get(code=code)
    except (ValueError, ApiToken.DoesNotExist):
        raise RegistryError.not_found(f"API token {token_id} not found.") from None
    with transaction.atomic():
        # The lock token creation takes: a token cannot create another while it is revoked.
        get_user_model().objects.select_for_update().filter(pk=token.user_id).first()
        revoked = {token.pk}
        created = [token.pk]
        while created:  # what it created, what those created, ...
            created = list(
                ApiToken.objects.filter(created_with__in=created)
                .exclude(pk__in=revoked)
                .values_list("pk", flat=True)
            )
            revoked.update(created)
        ApiToken.objects.filter(pk__in=revoked, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
    token.refresh_from_db()
    return token


def api_token_authenticate(*, token: str) -> ApiToken | None:
    """The active token with this secret (its ``user`` loaded), or None. Records when the
    token was last used."""
    if not tokens.looks_like_token(token):
        return None
    now = timezone.now()
    # By the unique digest alone (no ordering, no OR to compile: this runs on every call);
    # revocation and expiry are then checked on the row.
    try:
        found = ApiToken.objects.select_related("user").get(digest=tokens.digest(token))
    except ApiToken.DoesNotExist:
        return None
    if found.revoked_at is not None or (found.expires_at is not None and found.expires_at <= now):
        return None
    if found.last_used_at is None or now - found.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=found.pk).update(last_used_at=now)
    return found


@dataclass(frozen=True)
class Caller:
    """Who asks a one-statement read (docs/decisions/0019-hot-reads-in-one-statement.md): a
    signed-in ``user``, or the digest of an API token not checked yet (``token_digest``, with
    the ``username`` HTTP Basic sent beside it), which the read's own statement checks."""

    user: Any = None
    token_digest: str | None = None
    username: str | None = None


def _loaded(model: Any, values: dict[str, Any]) -> Any:
    """An instance as the ORM loads it with ``.only(*values)``: the other fields are deferred
    (read from the database if ever used)."""
    fields = [field.attname for field in model._meta.concrete_fields if field.attname in values]
    return model.from_db("default", fields, [values[name] for name in fields])


def api_token_folded_accept(caller: Caller, row: dict[str, Any]) -> tuple[Any, ApiToken] | None:
    """The user and token of a read whose statement checked the token itself (its columns
    ``token_id``, ``user_id``, ``username``, ``is_active``, ``is_superuser``, ``is_staff``,
    ``token_ok`` and ``token_stale``), or None when the token does not sign the call in: then
    the caller authenticates the usual way, which gives the usual refusal (or, for HTTP Basic,
    tries the secret as a password). What :func:`api_token_authenticate` and the
    authentication classes check, from the same row, and the last use recorded the same way.
    Nothing is cached: each call reads the token's row."""
    if row.get("token_id") is None or not row["token_ok"] or not row["is_active"]:
        return None
    if caller.username is not None and row["username"] != caller.username:
        return None
    user = _loaded(
        get_user_model(),
        {
            "id": row["user_id"],
            "username": row["username"],
            "is_active": bool(row["is_active"]),
            "is_superuser": bool(row["is_superuser"]),
            "is_staff": bool(row["is_staff"]),
        },
    )
    token = _loaded(ApiToken, {"id": row["token_id"], "user_id": row["user_id"]})
    if row["token_stale"]:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
    return user, token


# --- Permission grants ------------------------------------------------------------------------


@dataclass(frozen=True)
class AccessControlEntry:
    level: str
    user: Any = None
    group: Group | None = None


def _parse_acl(access_control_list: Any) -> list[AccessControlEntry]:
    """The entries with their users and groups, or a refusal that does not depend on who has an
    account: every entry's form is checked before any name is looked up, and an unknown user
    and an unknown group are refused with the same words. (A grant that succeeds still shows
    that its grantee exists; naming grantees needs that.)"""
    if not isinstance(access_control_list, list):
        raise RegistryError.invalid("Parameter 'access_control_list' must be a list.")
    named_entries = []
    for item in access_control_list:
        if not isinstance(item, dict):
            raise RegistryError.invalid("Each access control entry must be an object.")
        level = item.get("permission_level")
        if level not in PermissionLevel.values:
            raise RegistryError.invalid(
                f"Invalid permission_level {level!r}: use one of "
                f"{', '.join(PermissionLevel.values)}."
            )
        named = [
            key for key in ("user_name", "group_name", "service_principal_name") if item.get(key)
        ]
        if len(named) != 1:
            raise RegistryError.invalid(
                "Each access control entry names exactly one of user_name or group_name."
            )
        if named[0] == "service_principal_name":
            raise RegistryError.invalid(
                "Service principals are not supported: create a user and an API token for it."
            )
        value = item[named[0]]
        if not isinstance(value, str):
            raise RegistryError.invalid(f"Parameter '{named[0]}' must be a string.")
        named_entries.append((level, named[0], value))

    users = get_user_model()
    entries = []
    for level, kind, value in named_entries:
        try:
            if kind == "user_name":
                entry = AccessControlEntry(
                    level=level, user=users.objects.get_by_natural_key(value)
                )
            else:
                entry = AccessControlEntry(level=level, group=Group.objects.get(name=value))
        except (users.DoesNotExist, Group.DoesNotExist):
            raise RegistryError.invalid(
                f"Cannot grant permissions to {value!r}: no such user or group."
            ) from None
        entries.append(entry)
    return entries


def registered_model_permissions_update(
    *, actor: Any, registered_model: RegisteredModel, access_control_list: Any, replace: bool
) -> list[dict[str, Any]]:
    """Grant the listed levels (PATCH); with ``replace``, the list becomes the model's only
    direct grants (PUT). Needs CAN_MANAGE on the model. Returns the grants as they now stand,
    even when the change took the actor's own right to see them."""
    permissions.require_level(
        actor, registered_model, Level.CAN_MANAGE, action="change the permissions of"
    )
    entries = _parse_acl(access_control_list)
    with transaction.atomic():
        if replace:
            RegisteredModelGrant.objects.filter(registered_model=registered_model).delete()
        for entry in entries:
            RegisteredModelGrant.objects.update_or_create(
                registered_model=registered_model,
                user=entry.user,
                group=entry.group,
                defaults={"level": entry.level},
            )
    return selectors.access_control_list(registered_model)


def registered_model_grant_creator(*, registered_model: RegisteredModel, actor: Any) -> None:
    """The creator of a model manages it."""
    if permissions.is_signed_in(actor):
        RegisteredModelGrant.objects.create(
            registered_model=registered_model, user=actor, level=PermissionLevel.CAN_MANAGE
        )


def user_email_notifications_set(*, actor: Any, enabled: bool) -> None:
    """Turn the signed-in user's own email notifications on or off (docs/ui.md)."""
    _require_signed_in(actor)
    get_user_model().objects.filter(pk=actor.pk).update(email_notifications=bool(enabled))
    actor.email_notifications = bool(enabled)


def registered_model_grant_delete(
    *, actor: Any, registered_model: RegisteredModel, user_name: str = "", group_name: str = ""
) -> bool:
    """Remove the model's direct grant to one user or group (CAN_MANAGE on the model, as for
    any change of its grants). Returns whether there was one; the registry-wide levels stay."""
    permissions.require_level(
        actor, registered_model, Level.CAN_MANAGE, action="change the permissions of"
    )
    if bool(user_name) == bool(group_name):
        raise RegistryError.invalid("Name exactly one of user_name or group_name.")
    grants = RegisteredModelGrant.objects.filter(registered_model=registered_model)
    grants = (
        grants.filter(**{f"user__{get_user_model().USERNAME_FIELD}": user_name})
        if user_name
        else grants.filter(group__name=group_name)
    )
    deleted, _ = grants.delete()
    return bool(deleted)
