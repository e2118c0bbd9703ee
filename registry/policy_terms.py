"""The terms stage policies and alias policies share, in one place: how each is checked when a
policy is set, and how a model's own policy is tightened by the registry-wide one, its floor
(docs/architecture.md, "The approval workflow"; docs/decisions/0015-governed-aliases.md).

The two kinds of policy are two tables (their own terms differ), but a term both have means the
same in both and is checked and merged by the same function here.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Protocol

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from kernel.errors import ErrorCode, RegistryError
from registry import validation

MAX_REQUIRED_TAGS = 20
MAX_NAMES = 20
MAX_TTL_SECONDS = 366 * 86400


class SharedTerms(Protocol):
    """What a stage policy and an alias policy both have."""

    required_approvals: int
    allow_self_approval: bool
    required_version_tags: dict[str, str]
    request_ttl: timedelta | None


def required_approvals(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RegistryError.invalid("Parameter 'required_approvals' must be an integer.")
    if not 1 <= value <= 10:
        raise RegistryError.invalid("Parameter 'required_approvals' must be from 1 to 10.")
    return value


def request_ttl(value: Any) -> timedelta | None:
    """``request_ttl_seconds``: 0 is no expiry."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise RegistryError.invalid("Parameter 'request_ttl_seconds' must be an integer.")
    if value < 0 or value > MAX_TTL_SECONDS:
        raise RegistryError.invalid(
            f"Parameter 'request_ttl_seconds' must be from 0 (no expiry) to {MAX_TTL_SECONDS}."
        )
    return timedelta(seconds=value) if value else None


def required_tags(value: Any) -> dict[str, str]:
    """``[{"key", "value"}]`` (the tag shape of the protocol) or ``{"key": "value"}``."""
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list) and all(isinstance(item, dict) for item in value):
        items = [(item.get("key"), item.get("value")) for item in value]
    else:
        raise RegistryError.invalid(
            "Parameter 'required_version_tags' must be a list of {key, value} objects."
        )
    if len(items) > MAX_REQUIRED_TAGS:
        raise RegistryError.invalid(f"A policy may require at most {MAX_REQUIRED_TAGS} tags.")
    return {validation.tag_key(key): validation.tag_value(tag_value) for key, tag_value in items}


def _names(value: Any, parameter: str, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise RegistryError.invalid(f"Parameter '{parameter}' must be a list of {what} names.")
    names = list(dict.fromkeys(value))
    if len(names) > MAX_NAMES:
        raise RegistryError.invalid(f"A policy may name at most {MAX_NAMES} {parameter}.")
    return names


def _missing(names: list[str], known: set[str], parameter: str, what: str) -> str:
    missing = [name for name in names if name not in known]
    if not missing:
        return ""
    return (
        f"Parameter '{parameter}' names {what}s that do not exist: "
        + ", ".join(f"'{name}'" for name in missing)
        + "."
    )


def group_names(value: Any, parameter: str, *, empty_means: str) -> list[str]:
    """Names of existing groups, at most 20. An unknown name is refused rather than kept: a
    typo would leave what the list governs to registry admins alone. ``empty_means`` ends the
    refusal, saying what an empty list does."""
    names = _names(value, parameter, "group")
    known = set(Group.objects.filter(name__in=names).values_list("name", flat=True))
    refusal = _missing(names, known, parameter, "group")
    if refusal:
        raise RegistryError.invalid(f"{refusal} Create them first, or {empty_means}")
    return names


def usernames(value: Any, parameter: str) -> list[str]:
    """Usernames of existing accounts, at most 20 (refused like unknown group names)."""
    names = _names(value, parameter, "user")
    model: Any = get_user_model()
    field = f"{model.USERNAME_FIELD}__in"
    known = set(model.objects.filter(**{field: names}).values_list(model.USERNAME_FIELD, flat=True))
    refusal = _missing(names, known, parameter, "user")
    if refusal:
        raise RegistryError.invalid(refusal)
    return names


def tighten(merged: SharedTerms, own: SharedTerms, floor: SharedTerms) -> None:
    """Give ``merged`` (a copy of ``own``) each shared term at its strictest of ``own`` and
    ``floor``, the registry-wide policy a model's own cannot relax: the larger number of
    approvals, self-approval only where both allow it, the tags of both (the registry-wide
    value where both name a tag), the shorter expiry."""
    merged.required_approvals = max(own.required_approvals, floor.required_approvals)
    merged.allow_self_approval = own.allow_self_approval and floor.allow_self_approval
    merged.required_version_tags = {**own.required_version_tags, **floor.required_version_tags}
    ttls = [ttl for ttl in (own.request_ttl, floor.request_ttl) if ttl is not None]
    merged.request_ttl = min(ttls) if ttls else None


def refusal(policy: Any, kind: str, model_name: str, rule: str) -> RegistryError:
    """A refusal by a policy in force (``kind``: "Production stage policy", "alias policy of
    '@champion'"), naming whose policy it is (the registry-wide one, a model's own, or a
    model's own with the registry-wide one as its floor) and the rule."""
    if policy.registered_model_id is None:
        scope = f"the registry-wide {kind}"
    elif getattr(policy, "floor", None) is not None:
        scope = f"the {kind} of model '{model_name}' with the registry-wide one as its floor"
    else:
        scope = f"the {kind} of model '{model_name}'"
    return RegistryError(ErrorCode.PERMISSION_DENIED, f"Refused by {scope}: {rule}")
