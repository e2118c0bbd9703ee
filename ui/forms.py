"""Forms of the web UI. They only parse what was typed; every rule is the services'
(docs/architecture.md, "Layers"), so the forms accept what the services decide about and keep the
values for a redisplay."""

from __future__ import annotations

from typing import Any

from django import forms

from accounts.models import PermissionLevel
from registry.models import Stage
from webhooks.models import EventType, WebhookFlavor, WebhookStatus
from webhooks.payloads import MLFLOW_EVENTS

COMMENT_WIDGET = forms.Textarea(attrs={"rows": 3})
TARGET_STAGES = [(Stage.STAGING, "Staging"), (Stage.PRODUCTION, "Production"),
                 (Stage.ARCHIVED, "Archived"), (Stage.NONE, "None")]  # fmt: skip


#: The orders the models list offers, as the protocol's ``order_by`` clauses (the keys
#: ``registered-models/search`` accepts; the name breaks ties, so paging stays stable).
MODEL_ORDERS = {
    "name": ("Name, A to Z", ["name ASC"]),
    "-name": ("Name, Z to A", ["name DESC"]),
    "-updated": ("Recently updated first", ["last_updated_timestamp DESC", "name ASC"]),
    "updated": ("Least recently updated first", ["last_updated_timestamp ASC", "name ASC"]),
}


class ModelSearchForm(forms.Form):
    q = forms.CharField(label="Name contains", required=False, max_length=256)
    tag = forms.CharField(label="Tag", required=False, max_length=500, help_text="key or key=value")
    sort = forms.ChoiceField(
        label="Sort",
        required=False,
        choices=[(key, label) for key, (label, _) in MODEL_ORDERS.items()],
    )

    def order_by(self) -> list[str]:
        """The chosen order (by name when none or an unknown one was asked for)."""
        key = self.cleaned_data.get("sort") if self.is_bound and self.is_valid() else None
        return MODEL_ORDERS[key if key in MODEL_ORDERS else "name"][1]


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
    confirm_downgrade = forms.BooleanField(label="Yes, lower this grant", required=False)


class StagePolicyForm(forms.Form):
    """A stage's policy, shown filled with the terms in force (``policy_initial``), so a Save
    changes only what was changed."""

    stage = forms.ChoiceField(label="Stage", choices=TARGET_STAGES, widget=forms.HiddenInput)
    required_approvals = forms.IntegerField(
        label="Required approvals", min_value=1, max_value=10, initial=1
    )
    allow_self_approval = forms.BooleanField(
        label="Requester may approve", required=False, initial=True
    )
    allow_direct_transition = forms.BooleanField(
        label="Direct transitions allowed", required=False, initial=True
    )
    required_tags = forms.CharField(
        label="Required version tags",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="One key=value a line; the version must carry them before the move.",
    )
    request_ttl_hours = forms.IntegerField(
        label="Requests expire after (hours)",
        required=False,
        min_value=0,
        max_value=24 * 365,
        help_text="Empty or 0: requests do not expire.",
    )
    # The expiry in force, to the second: kept when the hours shown are left as they were.
    shown_ttl_seconds = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)

    def ttl_seconds(self) -> int:
        """The expiry to save: the one in force if its hours were not changed, else the hours."""
        hours = self.cleaned_data["request_ttl_hours"] or 0
        shown = self.cleaned_data["shown_ttl_seconds"]
        if shown is not None and shown // 3600 == hours:
            return int(shown)
        return int(hours) * 3600

    def clean_required_tags(self) -> dict[str, str]:
        tags: dict[str, str] = {}
        for line in self.cleaned_data["required_tags"].splitlines():
            if not line.strip():
                continue
            key, sep, value = line.partition("=")
            if not sep or not key.strip():
                raise forms.ValidationError(f"Write each required tag as key=value, not {line!r}.")
            tags[key.strip()] = value.strip()
        return tags


def policy_initial(policy: Any) -> dict[str, Any]:
    """The form's values for a policy in force (a model's own under the registry floor)."""
    ttl = policy.request_ttl
    return {
        "stage": policy.stage,
        "required_approvals": policy.required_approvals,
        "allow_self_approval": policy.allow_self_approval,
        "allow_direct_transition": policy.allow_direct_transition,
        "required_tags": "\n".join(f"{k}={v}" for k, v in policy.required_version_tags.items()),
        "request_ttl_hours": int(ttl.total_seconds() // 3600) if ttl else 0,
        "shown_ttl_seconds": int(ttl.total_seconds()) if ttl else 0,
    }


class DescriptionForm(forms.Form):
    description = forms.CharField(
        label="Description",
        required=False,
        max_length=50_000,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text="Markdown: **bold**, lists, links.",
    )


class TagForm(forms.Form):
    key = forms.CharField(label="Key", max_length=250)
    value = forms.CharField(label="Value", required=False, max_length=5000)


class RenameForm(forms.Form):
    new_name = forms.CharField(label="New name", max_length=256)


class ConfirmNameForm(forms.Form):
    """A deletion is confirmed by typing what is deleted."""

    confirm = forms.CharField(label="Type the name to confirm", max_length=256)


class AliasMoveForm(forms.Form):
    """Point an alias at a version: at once (who may move it directly), or by request."""

    alias = forms.CharField(label="Alias", max_length=255)
    version = forms.IntegerField(label="Version", min_value=1)
    comment = forms.CharField(label="Comment", required=False, widget=COMMENT_WIDGET)


# Every event a Databricks-flavoured hook can subscribe to, in words (the API's names are the
# values); the service refuses those a model's hook may not have, with its own message.
WEBHOOK_EVENTS = [(event, event.replace("_", " ").capitalize()) for event in EventType.values]
WEBHOOK_STATUSES = [
    (WebhookStatus.ACTIVE, "Active"),
    (WebhookStatus.TEST_MODE, "Test mode (fires only when tested)"),
    (WebhookStatus.DISABLED, "Disabled"),
]
SECRET_WIDGET = forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"})


# An MLflow-flavoured hook's events, as MLflow 3 names them (entity and action, docs/webhooks.md):
# the value is "ENTITY.ACTION", split into the API's {"entity", "action"} by mlflow_events().
MLFLOW_WEBHOOK_EVENTS = [
    (f"{entity}.{action}", f"{entity.lower()}.{action.lower()}") for entity, action in MLFLOW_EVENTS
]
WEBHOOK_FLAVORS = [
    (WebhookFlavor.DATABRICKS, "Databricks-style (a model's hooks, or all models)"),
    (WebhookFlavor.MLFLOW, "MLflow-style (MLflow 3 webhooks, all models)"),
]


def mlflow_events(values: list[str]) -> list[dict[str, str]]:
    """The form's "ENTITY.ACTION" values as the MLflow API's event objects."""
    return [dict(zip(("entity", "action"), value.split(".", 1), strict=True)) for value in values]


class WebhookForm(forms.Form):
    """A hook of either flavour, as ``registry-webhooks/create`` (Databricks) or MLflow's
    ``webhooks`` create takes it: the events offered follow the flavour. The secret and the
    authorization are write-only: never shown back, never kept in the session on a refusal; a
    secret the registry generates is shown once, after the redirect (docs/ui.md, "Webhooks")."""

    flavor = forms.ChoiceField(
        label="Kind", choices=WEBHOOK_FLAVORS, initial=WebhookFlavor.DATABRICKS, required=False
    )
    name = forms.CharField(
        label="Name",
        required=False,
        max_length=63,
        help_text="MLflow-style hooks: 1 to 63 letters, digits, '.', '_' or '-'.",
    )
    model_name = forms.CharField(
        label="Model",
        required=False,
        max_length=256,
        help_text="Databricks-style hooks: empty for all models (registry admins only).",
    )
    url = forms.CharField(label="URL", max_length=2048)
    events = forms.MultipleChoiceField(
        label="Events", choices=WEBHOOK_EVENTS, widget=forms.CheckboxSelectMultiple, required=False
    )
    mlflow_events = forms.MultipleChoiceField(
        label="Events",
        choices=MLFLOW_WEBHOOK_EVENTS,
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )
    secret = forms.CharField(
        label="Signing secret",
        required=False,
        widget=SECRET_WIDGET,
        help_text="Signs each delivery (X-Databricks-Signature, or MLflow's X-MLflow-Signature). "
        "Never shown again.",
    )
    # Not named "secret": the choice is kept on a refusal, unlike the fields that hold one.
    generate_signing_key = forms.BooleanField(
        label="No secret typed: generate one (shown once, after saving)",
        required=False,
        initial=True,
    )
    authorization = forms.CharField(
        label="Authorization header",
        required=False,
        widget=SECRET_WIDGET,
        help_text="Databricks-style hooks: sent as the Authorization header, e.g. Bearer <token>. "
        "Never shown again.",
    )
    enable_ssl_verification = forms.BooleanField(
        label="Verify the receiver's TLS certificate", required=False, initial=True
    )
    status = forms.ChoiceField(label="Status", choices=WEBHOOK_STATUSES)
    description = forms.CharField(
        label="Description", required=False, max_length=1000, widget=COMMENT_WIDGET
    )

    def clean_flavor(self) -> str:
        """Not chosen (a form from before the choice existed): Databricks-style, as then."""
        return str(self.cleaned_data["flavor"] or WebhookFlavor.DATABRICKS)

    def chosen_events(self) -> list[Any]:
        """The events of the chosen flavour, as its API takes them."""
        data = self.cleaned_data
        if data["flavor"] == WebhookFlavor.MLFLOW:
            return mlflow_events(data["mlflow_events"])
        return list(data["events"])


class WebhookEditForm(forms.Form):
    """The fields of an existing hook. A blank secret or authorization keeps the one set; a
    new URL (or turning TLS verification off) drops both unless they are typed again
    (``webhook_update``)."""

    url = forms.CharField(label="URL", max_length=2048)
    name = forms.CharField(label="Name", required=False, max_length=63)
    events = forms.MultipleChoiceField(
        label="Events", choices=WEBHOOK_EVENTS, widget=forms.CheckboxSelectMultiple, required=False
    )
    mlflow_events = forms.MultipleChoiceField(
        label="Events",
        choices=MLFLOW_WEBHOOK_EVENTS,
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )
    secret = forms.CharField(label="New signing secret", required=False, widget=SECRET_WIDGET)
    remove_secret = forms.BooleanField(label="Remove the signing secret", required=False)
    authorization = forms.CharField(
        label="New authorization header", required=False, widget=SECRET_WIDGET
    )
    remove_authorization = forms.BooleanField(
        label="Remove the authorization header", required=False
    )
    enable_ssl_verification = forms.BooleanField(
        label="Verify the receiver's TLS certificate", required=False
    )
    status = forms.ChoiceField(label="Status", choices=WEBHOOK_STATUSES)
    description = forms.CharField(
        label="Description", required=False, max_length=1000, widget=COMMENT_WIDGET
    )
