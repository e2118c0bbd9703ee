"""Comments on model versions: anyone who reads the model comments; the author edits; the
author or a manager deletes."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts import permissions
from accounts.models import User
from accounts.permissions import Level
from kernel.errors import ErrorCode, RegistryError
from registry import validation
from registry.models import ActivityType, Comment
from registry.selectors import model_version_by_number
from registry.services.common import (
    COMMENT_MAX_LENGTH,
    actor_or_none,
    lock_registered_model,
    record_activity,
)
from webhooks.models import EventType
from webhooks.services.outbox import webhook_event_emit


def comment_create(*, actor: User | None, name: Any, version: Any, comment: Any) -> Comment:
    name = validation.require_string(name, "name")
    number = validation.version_number(version)
    text = validation.require_string(comment, "comment")
    text = validation.bounded_text(text, "comment", COMMENT_MAX_LENGTH)
    now = timezone.now()
    model_version = model_version_by_number(name, number)
    permissions.require_level(
        actor, model_version.registered_model, Level.CAN_READ, action="comment on"
    )
    author = actor_or_none(actor)
    with transaction.atomic():
        # The model's lock first, as every writer of its trail takes it (the trail's hash
        # chain, docs/decisions/0017-tamper-evident-trail.md), before anything else is locked.
        lock_registered_model(name)
        created = Comment.objects.create(
            model_version=model_version,
            author=author,
            author_username=author.get_username() if author else "",
            text=text,
            created_at=now,
            updated_at=now,
        )
        record_activity(
            actor=actor,
            model_version=model_version,
            activity_type=ActivityType.NEW_COMMENT,
            comment=text,
            at=now,
        )
        webhook_event_emit(
            event=EventType.COMMENT_CREATED,
            registered_model=model_version.registered_model,
            model_version=model_version,
            payload_data={"comment": text},
            actor=actor,
        )
    return created


def _comment_by_id(comment_id: Any) -> Comment:
    try:
        return Comment.objects.select_related("model_version__registered_model").get(
            code=uuid.UUID(str(comment_id))
        )
    except (ValueError, Comment.DoesNotExist):
        raise RegistryError.not_found(f"Comment {comment_id} not found.") from None


def comment_update(*, actor: User | None, id: Any, comment: Any) -> Comment:  # noqa: A002
    """Edit a comment: only its author may."""
    text = validation.require_string(comment, "comment")
    text = validation.bounded_text(text, "comment", COMMENT_MAX_LENGTH)
    found = _comment_by_id(validation.require_string(id, "id"))
    permissions.require_level(
        actor, found.model_version.registered_model, Level.CAN_READ, action="read"
    )
    if not permissions.can_edit_comment(actor, found):
        raise RegistryError(ErrorCode.PERMISSION_DENIED, "Only a comment's author may edit it.")
    found.text = text
    found.updated_at = timezone.now()
    found.save(update_fields=["text", "updated_at"])
    return found


def comment_delete(*, actor: User | None, id: Any) -> None:  # noqa: A002
    """Delete a comment: its author or a CAN_MANAGE holder may."""
    found = _comment_by_id(validation.require_string(id, "id"))
    permissions.require_level(
        actor,
        found.model_version.registered_model,
        permissions.comment_delete_level(actor, found),
        action="delete others' comments in",
    )
    found.delete()
