"""Deciding a request, whichever kind it is: a transition request (a version to a stage) or an
alias request (an alias to a version). The two kinds are two tables with their own targets and
their own rule for who may decide (the level of the move; the alias policy's roles), but the
steps of a decision are the same and live here, so the two cannot drift apart:

- the ``request_id`` a decider may send, naming the request they read (:func:`request_code`,
  :func:`open_request_checked`);
- an approval: refused to the requester where the policy forbids self-approval and to an
  approver who already approved, recorded with the version's artifact digest
  (:func:`approval_record`; docs/decisions/0015-governed-aliases.md);
- the approvals that count when the move would apply (:func:`approvals_tally`): given for the
  bytes the version holds now, by an account that still exists and may still decide, and not
  the requester's own once the policy forbids it;
- the expiry of requests left open longer than the policy's ``request_ttl``
  (:func:`requests_expire`).

Each kind's module (``transition_requests``, ``alias_requests``) keeps what differs: how a
request is found, who may decide it, the move an approval completes, and its events.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from django.db import transaction
from django.db.models import QuerySet

from accounts import permissions
from accounts.models import User
from kernel.errors import RegistryError
from registry.models import (
    AliasPolicy,
    AliasRequest,
    ModelVersion,
    StagePolicy,
    TransitionRequest,
    TransitionRequestStatus,
)
from registry.services.common import actor_or_none, lock_registered_model

Request = TransitionRequest | AliasRequest
Policy = StagePolicy | AliasPolicy
R = TypeVar("R", TransitionRequest, AliasRequest)


def request_code(request_id: Any, *, kind: str, listing: str) -> uuid.UUID | None:
    """The optional ``request_id`` of a decision: the ``id`` of a ``kind`` that ``listing``
    gives."""
    if request_id is None or request_id == "":
        return None
    try:
        return uuid.UUID(str(request_id))
    except ValueError:
        raise RegistryError.invalid(
            f"Parameter 'request_id' must be the id of a {kind}, as {listing} returns it; "
            f"got '{str(request_id)[:80]}'."
        ) from None


def open_request_checked(
    request: R | None, code: uuid.UUID | None, *, where: str, by: str = ""
) -> R:
    """The open request found for the names a decider sent, or the refusal.

    Model, version and stage (or alias) name a request as the MLflow and Databricks APIs do,
    so between reading a request and deciding it, a rename (another model now holding the
    name) or a request decided and made again could put another request behind the same
    names. With ``code`` (the id the decider read) the decision applies to that request or to
    none.
    """
    if request is None:
        raise RegistryError.not_found(f"No open request{by} {where}.")
    if code is not None and request.code != code:
        raise RegistryError.invalid(
            f"Request {code} is not the open request {where}: the model may have been renamed, "
            "or the request decided and another one made, since it was read. List the requests "
            "again and decide the one you mean."
        )
    return request


def approval_record(
    *,
    actor: User | None,
    request: Request,
    model_version: ModelVersion,
    policy: Policy,
    refusal: Callable[[str], RegistryError],
    comment: str,
    at: datetime,
) -> None:
    """Record the actor's approval of ``request`` (under the model's lock, held by the caller),
    bound to the version's artifact digest now. ``refusal`` words a refusal by the policy."""
    approver_name = permissions.acting_username(actor)
    if permissions.self_approval_refused(approver_name, request, policy):
        raise refusal(
            "allow_self_approval is off: the requester may not approve their own request."
        )
    if permissions.has_approved(actor, request):
        raise RegistryError.invalid(
            f"{approver_name} has already approved this request; it needs another approver."
        )
    request.approvals.create(
        approver=actor_or_none(actor),
        approver_username=approver_name,
        comment=comment,
        artifact_digest=model_version.artifact_digest,
        created_at=at,
    )


@dataclass(frozen=True)
class Tally:
    """The approvers whose approval counts now, each other one with the reason it does not,
    and how many the policy requires."""

    counted: list[str]
    lapsed: list[str]
    required: int

    @property
    def complete(self) -> bool:
        return len(self.counted) >= self.required

    @property
    def progress(self) -> str:
        return f"Approval {len(self.counted)} of {self.required}"

    @property
    def lapsed_note(self) -> str:
        """ " Approvals that no longer count: …." (with its leading space), or ""."""
        if not self.lapsed:
            return ""
        return f" Approvals that no longer count: {'; '.join(self.lapsed)}."


def approvals_tally(
    *,
    request: Request,
    model_version: ModelVersion,
    policy: Policy,
    no_longer_decides: Callable[[User], str | None],
) -> Tally:
    """Count the approvals of ``request`` as they stand when the move would apply, not only
    when each was given. An approval stops counting when the version's bytes changed since
    (its digest), its approver's account was deleted, it is the requester's own and the policy
    forbids that now, or ``no_longer_decides`` gives a reason (a grant revoked or lowered, a
    role lost)."""
    counted: list[str] = []
    lapsed: list[str] = []
    for approval in request.approvals.select_related("approver").order_by("created_at", "id"):
        name = approval.approver_username
        approver = approval.approver
        if approval.artifact_digest != model_version.artifact_digest:
            lapsed.append(f"{name} (given for {approval.artifact_digest or 'no digest'})")
        elif not name:  # the registry itself
            counted.append(name)
        elif approver is None:
            lapsed.append(f"{name} (the account was deleted)")
        elif permissions.self_approval_refused(name, request, policy):
            lapsed.append(f"{name} (the requester, and allow_self_approval is off)")
        elif (reason := no_longer_decides(approver)) is not None:
            lapsed.append(f"{name} ({reason})")
        else:
            counted.append(name)
    return Tally(counted=counted, lapsed=lapsed, required=policy.required_approvals)


def requests_expire(
    requests: QuerySet[R],
    *,
    model_name: str,
    now: datetime,
    expire: Callable[[QuerySet[R], datetime], bool],
) -> int:
    """Close the open ``requests`` whose ``expires_at`` has passed, each under its model's row
    lock (``model_name`` is the lookup of the model's name from the request). ``expire`` gets
    the request, still open, as a one-row query set and the time it was made, and closes it.
    Returns how many it closed."""
    expired = 0
    due = requests.filter(status=TransitionRequestStatus.OPEN, expires_at__lte=now).values_list(
        "pk", model_name, "created_at"
    )
    for pk, name, created_at in due:
        with transaction.atomic():
            lock_registered_model(name)
            # Decided since the list was read? The query set is then empty and nothing changes.
            still_open = requests.filter(pk=pk, status=TransitionRequestStatus.OPEN)
            expired += expire(still_open, created_at)
    return expired
