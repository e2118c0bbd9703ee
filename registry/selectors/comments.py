"""Reads of comments on versions, and what the caller may do with one."""

from __future__ import annotations

from typing import Any

from accounts import permissions
from accounts.permissions import Level
from registry.models import Comment, ModelVersion


def model_version_comments(*, model_version: ModelVersion, limit: int) -> list[Comment]:
    """The version's first comments, oldest first (for the web UI: the actor's permission was
    checked by the selector that gave the version)."""
    return list(
        Comment.objects.filter(model_version=model_version)
        .select_related("model_version__registered_model")
        .order_by("created_at", "id")[:limit]
    )


def comment_available_actions(
    actor: Any, comment: Comment, *, level: Level | None = None
) -> list[str]:
    """What the caller may do with a comment, by the rules the services refuse with. ``level``
    (the actor's on the comment's model) may be passed in when it is already known, so a list
    of comments costs no query per row."""
    actions = ["EDIT_COMMENT"] if permissions.can_edit_comment(actor, comment) else []
    if level is None:
        # The author deletes at any level, so their level (a query) is only read for others.
        level = (
            Level.NONE
            if actions
            else permissions.effective_level(actor, comment.model_version.registered_model)
        )
    if permissions.can_delete_comment(actor, comment, level):
        actions.append("DELETE_COMMENT")
    return actions
