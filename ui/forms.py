"""Forms of the web UI. They only parse what was typed; every rule is the services'
(docs/architecture.md, "Layers"), so the forms accept what the services decide about and keep the
values for a redisplay."""

from __future__ import annotations

from django import forms

from accounts.models import PermissionLevel
from registry.models import Stage

COMMENT_WIDGET = forms.Textarea(attrs={"rows": 3})
TARGET_STAGES = [(Stage.STAGING, "Staging"), (Stage.PRODUCTION, "Production"),
                 (Stage.ARCHIVED, "Archived"), (Stage.NONE, "None")]  # fmt: skip


class ModelSearchForm(forms.Form):
    q = forms.CharField(label="Name contains", required=False, max_length=256)
    tag = forms.CharField(label="Tag", required=False, max_length=500, help_text="key or key=value")


class TransitionForm(forms.Form):
    """Request a move (anyone who can read), or apply it at once (who may move directly)."""

    stage = forms.ChoiceField(label="Target stage", choices=TARGET_STAGES)
    comment = forms.CharField(label="Comment", required=False, widget=COMMENT_WIDGET)
    archive_existing_versions = forms.BooleanField(
        label="Archive the versions now in that stage (when moved now)", required=False
    )


class DecisionForm(forms.Form):
    comment = forms.CharField(
        label="Comment on your decision",
        required=False,
        widget=COMMENT_WIDGET,
        help_text="Optional; for a rejection, the reason.",
    )
    archive_existing_versions = forms.BooleanField(
        label="Archive the versions now in that stage", required=False, initial=True
    )


class CommentForm(forms.Form):
    comment = forms.CharField(label="New comment", widget=COMMENT_WIDGET)


class TokenCreateForm(forms.Form):
    name = forms.CharField(label="Token name", max_length=100)
    expires_in_days = forms.IntegerField(
        label="Expires in (days)", required=False, min_value=1, max_value=3650,
        help_text="Leave empty for a token that does not expire.",
    )  # fmt: skip


class GrantForm(forms.Form):
    principal = forms.CharField(
        label="User or group", max_length=150, help_text="A user name, or group:<name>"
    )
    level = forms.ChoiceField(label="Permission", choices=PermissionLevel.choices)


class StagePolicyForm(forms.Form):
    stage = forms.ChoiceField(label="Stage", choices=TARGET_STAGES)
    required_approvals = forms.IntegerField(
        label="Required approvals", min_value=1, max_value=10, initial=1
    )
    allow_self_approval = forms.BooleanField(
        label="Requester may approve", required=False, initial=True
    )
    allow_direct_transition = forms.BooleanField(
        label="Direct transitions allowed", required=False, initial=True
    )


class AliasMoveForm(forms.Form):
    """Point an alias at a version: at once (who may move it directly), or by request."""

    alias = forms.CharField(label="Alias", max_length=255)
    version = forms.IntegerField(label="Version", min_value=1)
    comment = forms.CharField(label="Comment", required=False, widget=COMMENT_WIDGET)
