"""Email notifications about requests (docs/ui.md, "Notifications").

When a transition or alias request is made, an email goes to each person who may decide it
(by the same rule the API reports as ``available_actions``); when it is decided (approved to
the end, or rejected), one goes to the requester. Nobody gets an email about their own act,
and each user can turn them off (``User.email_notifications``). Off unless a mail server is
set (``NOTIFICATIONS["ENABLED"]``, from ``EMAIL_HOST``).

The emails follow the changes that cause them: receivers of the rows the services write (the
trail's entries, a new alias request, the move of an approved alias request) send after the
transaction commits, so a rolled-back change sends nothing, and a mail server that fails or is
slow (bounded by ``EMAIL_TIMEOUT``) is logged and never fails the change.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.core import mail
from django.db import transaction
from django.db.models import Q
from django.db.models.signals import post_save
from django.urls import reverse

from accounts import permissions
from accounts.permissions import Level
from kernel.conf import SettingsGroup
from registry import selectors
from registry.models import (
    Activity,
    ActivityType,
    AliasRequest,
    PointerCause,
    PointerMove,
    RegisteredModel,
    TransitionRequest,
    TransitionRequestStatus,
)
from registry.selectors import aliases as alias_selectors

logger = logging.getLogger(__name__)

# At most this many people are told of one request (the first by username).
MAX_RECIPIENTS = 200
DECIDE_ACTIONS = {
    "APPROVE_TRANSITION_REQUEST",
    "REJECT_TRANSITION_REQUEST",
    "APPROVE_ALIAS_REQUEST",
    "REJECT_ALIAS_REQUEST",
}


@dataclass(frozen=True)
class NotificationSettings:
    enabled: bool
    base_url: str


_NOTIFICATIONS = SettingsGroup("NOTIFICATIONS", NotificationSettings)


def notification_settings() -> NotificationSettings:
    return _NOTIFICATIONS.get()


@dataclass(frozen=True)
class Email:
    to: str
    subject: str
    body: str


def _link(path: str) -> str:
    return notification_settings().base_url + path


def _version_path(registered_model: RegisteredModel, version: int) -> str:
    return reverse("ui:version-detail", kwargs={"name": registered_model.name, "version": version})


def _footer() -> str:
    return (
        "\n\nEverything waiting for you: " + _link(reverse("ui:waiting")) + "\n"
        "To stop these emails, turn them off on " + _link(reverse("ui:my-requests")) + "\n"
    )


def _send(emails: list[Email]) -> int:
    if not emails:
        return 0
    messages = [mail.EmailMessage(email.subject, email.body, to=[email.to]) for email in emails]
    with mail.get_connection() as connection:
        return int(connection.send_messages(messages) or 0)


def _wants_email(user: Any) -> bool:
    return bool(user is not None and user.is_active and user.email and user.email_notifications)


def _deciders(registered_model: RegisteredModel, may_decide: Callable[[Any], bool]) -> list[Any]:
    """The people who may decide, with an address and emails on: those a grant on the model
    names (directly or through a group) and registry admins, or everyone when the default
    level alone would let them decide; each checked with ``may_decide``."""
    user_model: Any = get_user_model()
    users = user_model.objects.filter(is_active=True, email_notifications=True).exclude(email="")
    if permissions.default_level() < Level.CAN_MANAGE_STAGING_VERSIONS:
        users = users.filter(
            Q(is_superuser=True)
            | Q(model_grants__registered_model=registered_model)
            | Q(groups__model_grants__registered_model=registered_model)
        ).distinct()
    return [user for user in users.order_by("username")[:MAX_RECIPIENTS] if may_decide(user)]


# --- Transition requests ----------------------------------------------------------------------


def _transition_request(request_id: int) -> TransitionRequest | None:
    return (
        TransitionRequest.objects.select_related("model_version__registered_model", "requested_by")
        .prefetch_related("approvals")
        .filter(pk=request_id)
        .first()
    )


def transition_request_waiting(request_id: int) -> int:
    """Tell those who may decide the request that it waits for them. Returns emails sent."""
    request = _transition_request(request_id)
    if request is None or request.status != TransitionRequestStatus.OPEN:
        return 0
    model_version = request.model_version
    registered_model = model_version.registered_model

    def may_decide(user: Any) -> bool:
        if user.pk == request.requested_by_id:
            return False
        return bool(DECIDE_ACTIONS.intersection(selectors.request_available_actions(user, request)))

    policy = selectors.stage_policy_effective(
        registered_model=registered_model, stage=request.to_stage
    )
    terms = [f"{policy.required_approvals} approval(s) needed"]
    if not policy.allow_self_approval:
        terms.append("the requester may not approve")
    terms += [f"needs the tag {key}={value}" for key, value in policy.required_version_tags.items()]
    subject = (
        f"[Model registry] {registered_model.name} version {model_version.version} → "
        f"{request.to_stage} waits for your decision"
    )
    body = (
        f"{request.requested_by_username or 'Someone'} asks to move version "
        f"{model_version.version} of {registered_model.name} from {request.from_stage} to "
        f"{request.to_stage}.\n"
        + (f"\nTheir comment: {request.comment}\n" if request.comment else "")
        + "\nThe policy: "
        + "; ".join(terms)
        + ".\n\nDecide it here: "
        + _link(_version_path(registered_model, model_version.version))
        + _footer()
    )
    return _send(
        [Email(user.email, subject, body) for user in _deciders(registered_model, may_decide)]
    )


def transition_request_decided(request_id: int, activity_id: int) -> int:
    """Tell the requester that their request was approved (to the end) or rejected, unless
    they decided it themselves. Returns emails sent (0 for a partial approval)."""
    request = _transition_request(request_id)
    activity = Activity.objects.filter(pk=activity_id).first()
    if request is None or activity is None:
        return 0
    if request.status == TransitionRequestStatus.APPROVED:
        if activity.created_at != request.closed_at:  # an approval that did not complete it
            return 0
        outcome = f"approved: version {request.model_version.version} is now in {request.to_stage}"
    elif request.status == TransitionRequestStatus.REJECTED:
        outcome = "rejected"
    else:
        return 0
    requester = request.requested_by
    if requester is None or not _wants_email(requester) or activity.actor_id == requester.pk:
        return 0
    model_version = request.model_version
    registered_model = model_version.registered_model
    subject = (
        f"[Model registry] Your request for {registered_model.name} version "
        f"{model_version.version} → {request.to_stage} was {outcome.split(':')[0]}"
    )
    body = (
        f"{activity.actor_username or 'The registry'} {outcome}.\n"
        + (f"\nTheir comment: {activity.comment}\n" if activity.comment else "")
        + "\nThe version: "
        + _link(_version_path(registered_model, model_version.version))
        + _footer()
    )
    return _send([Email(requester.email, subject, body)])


# --- Alias requests ---------------------------------------------------------------------------


def _alias_request(request_id: int) -> AliasRequest | None:
    return (
        AliasRequest.objects.select_related(
            "registered_model", "model_version__registered_model", "requested_by"
        )
        .prefetch_related("approvals")
        .filter(pk=request_id)
        .first()
    )


def alias_request_waiting(request_id: int) -> int:
    """Tell those who may decide the alias request that it waits for them."""
    request = _alias_request(request_id)
    if request is None or request.status != TransitionRequestStatus.OPEN:
        return 0
    registered_model = request.registered_model
    policy = alias_selectors.alias_policy_effective(
        registered_model=registered_model, alias=request.alias
    )

    def may_decide(user: Any) -> bool:
        if user.pk == request.requested_by_id:
            return False
        actions = alias_selectors.alias_request_available_actions(user, request, policy=policy)
        return bool(DECIDE_ACTIONS.intersection(actions))

    number = request.model_version.version
    subject = (
        f"[Model registry] {registered_model.name} @{request.alias} → version {number} waits "
        "for your decision"
    )
    body = (
        f"{request.requested_by_username or 'Someone'} asks that @{request.alias} of "
        f"{registered_model.name} name version {number}.\n"
        + (f"\nTheir comment: {request.comment}\n" if request.comment else "")
        + "\nDecide it here: "
        + _link(reverse("ui:model-detail", kwargs={"name": registered_model.name}) + "#aliases")
        + _footer()
    )
    return _send(
        [Email(user.email, subject, body) for user in _deciders(registered_model, may_decide)]
    )


def alias_request_approved(move_id: int) -> int:
    """Tell the requester that their alias request was approved (the move it made)."""
    move = PointerMove.objects.filter(pk=move_id).first()
    if move is None or move.request_code is None:
        return 0
    request = (
        AliasRequest.objects.select_related("registered_model", "requested_by")
        .filter(code=move.request_code)
        .first()
    )
    requester = request.requested_by if request is not None else None
    if request is None or requester is None or not _wants_email(requester):
        return 0
    if move.actor_username == request.requested_by_username:  # their own approval
        return 0
    registered_model = request.registered_model
    subject = (
        f"[Model registry] Your request that {registered_model.name} @{request.alias} name "
        f"version {move.to_version} was approved"
    )
    body = (
        f"{move.actor_username or 'The registry'} approved it: @{request.alias} now names "
        f"version {move.to_version}.\n\nThe model: "
        + _link(reverse("ui:model-detail", kwargs={"name": registered_model.name}) + "#aliases")
        + _footer()
    )
    return _send([Email(requester.email, subject, body)])


def alias_request_rejected(request_id: int) -> int:
    """Tell the requester that their alias request was rejected, unless they rejected it."""
    request = _alias_request(request_id)
    if request is None or request.status != TransitionRequestStatus.REJECTED:
        return 0
    requester = request.requested_by
    if requester is None or not _wants_email(requester):
        return 0
    if request.closed_by_username == request.requested_by_username:
        return 0
    registered_model = request.registered_model
    number = request.model_version.version
    subject = (
        f"[Model registry] Your request that {registered_model.name} @{request.alias} name "
        f"version {number} was rejected"
    )
    body = (
        f"{request.closed_by_username or 'The registry'} rejected it.\n"
        + (f"\nTheir comment: {request.closing_comment}\n" if request.closing_comment else "")
        + "\nThe model: "
        + _link(reverse("ui:model-detail", kwargs={"name": registered_model.name}) + "#aliases")
        + _footer()
    )
    return _send([Email(requester.email, subject, body)])


# --- Wiring -----------------------------------------------------------------------------------


def _after_commit(send: Callable[..., int], *args: Any) -> None:
    def run() -> None:
        try:
            send(*args)
        except Exception:  # a mail server down or slow must not fail the change
            logger.exception("Could not send the notification %s%s", send.__name__, args)

    transaction.on_commit(run)


def _activity_saved(sender: Any, instance: Activity, created: bool, **kwargs: Any) -> None:
    if not created or instance.request_id is None or not notification_settings().enabled:
        return
    if instance.activity_type == ActivityType.REQUESTED_TRANSITION:
        _after_commit(transition_request_waiting, instance.request_id)
    elif instance.activity_type in (ActivityType.APPROVED_REQUEST, ActivityType.REJECTED_REQUEST):
        _after_commit(transition_request_decided, instance.request_id, instance.pk)


def _alias_request_saved(
    sender: Any,
    instance: AliasRequest,
    created: bool,
    update_fields: frozenset[str] | None = None,
    **kwargs: Any,
) -> None:
    if not notification_settings().enabled:
        return
    if created:
        _after_commit(alias_request_waiting, instance.pk)
    elif (
        update_fields is not None
        and "status" in update_fields
        and instance.status == TransitionRequestStatus.REJECTED
    ):
        _after_commit(alias_request_rejected, instance.pk)


def _pointer_move_saved(sender: Any, instance: PointerMove, created: bool, **kwargs: Any) -> None:
    if (
        created
        and instance.cause == PointerCause.APPROVED_REQUEST
        and instance.request_code is not None
        and notification_settings().enabled
    ):
        _after_commit(alias_request_approved, instance.pk)


def connect() -> None:
    """Connect the receivers (``RegistryConfig.ready``)."""
    receivers: list[tuple[Any, Callable[..., None]]] = [
        (Activity, _activity_saved),
        (AliasRequest, _alias_request_saved),
        (PointerMove, _pointer_move_saved),
    ]
    for model, receiver in receivers:
        post_save.connect(receiver, sender=model, dispatch_uid=f"notifications-{model.__name__}")
