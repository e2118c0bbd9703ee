"""The model list (searched by name and tag, paged) and a model's page, with its
permissions and stage policies for those who manage it."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from accounts import permissions
from accounts import selectors as account_selectors
from accounts import services as account_services
from accounts.models import PermissionLevel
from accounts.permissions import Level
from accounts.requests import SignedInHttpRequest
from kernel.errors import RegistryError
from registry import selectors, services
from registry.models import Stage
from registry.services.aliases import deletion_guards
from ui import forms
from ui import selectors as ui_selectors
from ui.markdown import render as render_markdown
from ui.views.base import bound_if_typed, refuse, take_typed, ui_form, ui_view
from webhooks import selectors as webhook_selectors
from webhooks.models import WebhookFlavor

MODELS_PER_PAGE = 20


@ui_view
def home(request: HttpRequest) -> HttpResponse:
    return redirect("ui:model-list")


@ui_view
def model_list(request: HttpRequest) -> HttpResponse:
    form = forms.ModelSearchForm(request.GET or None)
    narrowed: dict[str, str | None] = {}
    if form.is_valid():
        narrowed["name_contains"] = form.cleaned_data["q"].strip() or None
        if form.cleaned_data["tag"].strip():
            key, sep, value = form.cleaned_data["tag"].partition("=")  # "key" or "key=value"
            narrowed["tag_key"] = key.strip()
            narrowed["tag_value"] = value.strip() if sep else None
    page_token = request.GET.get("page_token") or None
    error = None
    try:
        page, next_token = selectors.registered_model_search(
            actor=request.user,
            **narrowed,
            max_results=MODELS_PER_PAGE,
            order_by=form.order_by(),
            page_token=page_token,
        )
    except RegistryError as exc:
        page, next_token, error = [], "", exc.message
    rows = []
    for registered_model in page:
        by_stage = {mv.current_stage: mv for mv in registered_model.latest_versions}
        rows.append(
            {
                "model": registered_model,
                "staging": by_stage.get(Stage.STAGING),
                "production": by_stage.get(Stage.PRODUCTION),
                "latest": max(
                    (mv.version for mv in registered_model.latest_versions), default=None
                ),
            }
        )
    query = request.GET.copy()
    query.pop("page_token", None)
    next_query = query.copy()
    if next_token:
        next_query["page_token"] = next_token
    return render(
        request,
        "ui/model_list.html",
        {
            "form": form,
            "rows": rows,
            "error": error,
            "next_url": f"?{next_query.urlencode()}" if next_token else "",
            "first_url": f"?{query.urlencode()}" if page_token else "",
            "nav": "models",
        },
        status=400 if error else 200,
    )


def _model_context(request: HttpRequest, name: str) -> dict[str, Any]:
    typed = take_typed(request)
    registered_model = selectors.registered_model_detail(actor=request.user, name=name)
    level = permissions.effective_level(request.user, registered_model)
    versions = selectors.model_versions_newest(registered_model=registered_model, limit=200)
    context: dict[str, Any] = {
        "model": registered_model,
        "description_html": render_markdown(registered_model.description),
        "versions": versions,
        "level": level,
        "level_label": level_label(level.name),
        "can_manage": level >= Level.CAN_MANAGE,
        "can_edit": level >= Level.CAN_EDIT,
        "alias_form": bound_if_typed(forms.AliasMoveForm, typed, prefix="a"),
        "nav": "models",
        **ui_selectors.alias_panel(
            actor=request.user, registered_model=registered_model, level=level
        ),
    }
    if typed is not None:
        context["alias_request_rows"] = [
            replace(row, typed_comment=typed.get(f"ar-{row.request.code}-comment", ""))
            for row in context["alias_request_rows"]
        ]
    if level >= Level.CAN_MANAGE:
        context["acl"] = account_selectors.registered_model_access_control_list(
            actor=request.user, registered_model=registered_model
        )
        context["policies"] = list(
            selectors.stage_policies_effective(registered_model=registered_model).values()
        )
        context["webhooks"] = [
            hook
            for flavor in WebhookFlavor.values
            for hook in webhook_selectors.webhook_list(
                actor=request.user, flavor=flavor, model_name=name
            )[:50]
        ]
        context["grant_form"] = bound_if_typed(forms.GrantForm, typed)
        context["grant_rows"] = _grant_rows(context["acl"])
        context["policy_rows"] = [
            {
                "policy": policy,
                "ttl_hours": forms.policy_initial(policy)["request_ttl_hours"],
                "form": bound_if_typed(
                    forms.StagePolicyForm,
                    typed,
                    prefix=f"p-{policy.stage}",
                    initial=forms.policy_initial(policy),
                ),
            }
            for policy in context["policies"]
        ]
        # Why the model may not simply be deleted (the service's own guard), shown before the
        # click; a forced delete stays with the API and the admin.
        context["delete_guards"] = deletion_guards(registered_model, list(versions))
    if level >= Level.CAN_EDIT:
        context["description_form"] = bound_if_typed(
            forms.DescriptionForm,
            typed,
            prefix="d",
            initial={"description": registered_model.description},
        )
        context["tag_form"] = bound_if_typed(forms.TagForm, typed, prefix="tag")
    if level >= Level.CAN_MANAGE:
        context["rename_form"] = bound_if_typed(
            forms.RenameForm, typed, prefix="rn", initial={"new_name": registered_model.name}
        )
        context["delete_form"] = bound_if_typed(forms.ConfirmNameForm, typed, prefix="del")
    return context


@ui_view
def model_detail(request: HttpRequest, name: str) -> HttpResponse:
    return render(request, "ui/model_detail.html", _model_context(request, name))


LEVEL_LABELS = dict(PermissionLevel.choices)


def level_label(level: str) -> str:
    """A level's readable name ("Can manage production versions")."""
    return LEVEL_LABELS.get(level, level)


def _grant_rows(acl: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The grants as the page lists them: who, the level's readable name, and whether it is the
    model's own grant (which can be changed and removed) or registry-wide."""
    rows = []
    for entry in acl:
        for permission in entry["all_permissions"]:
            principal = entry.get("user_name") or f"group:{entry['group_name']}"
            rows.append(
                {
                    "principal": principal,
                    "is_group": "group_name" in entry,
                    "name": entry.get("user_name") or entry.get("group_name"),
                    "level": permission["permission_level"],
                    "label": level_label(permission["permission_level"]),
                    "inherited": permission["inherited"],
                    "choices": PermissionLevel.choices,
                }
            )
    return rows


def model_page(name: str, **_: Any) -> str:
    """The model's page: where its forms are, and where their refusals are shown."""
    return reverse("ui:model-detail", kwargs={"name": name})


def model_refusal(
    request: HttpRequest, name: str, exc: RegistryError, anchor: str = ""
) -> HttpResponse:
    return refuse(request, exc, page=model_page(name), anchor=anchor)


def _current_level(registered_model: Any, principal: str) -> str | None:
    """The model's own grant to ``principal`` (``user`` or ``group:<name>``), if any."""
    for entry in account_selectors.access_control_list(registered_model):
        named = entry.get("user_name") or f"group:{entry.get('group_name')}"
        if named == principal:
            own = [p for p in entry["all_permissions"] if not p["inherited"]]
            if own:
                return str(own[0]["permission_level"])
    return None


@ui_form(model_page)
def model_grant(request: HttpRequest, name: str) -> HttpResponse:
    """Grant a level, or change a grant. Lowering someone's grant asks first: the form comes
    back with the change described and a box to tick (docs/ui.md, "Editing")."""
    form = forms.GrantForm(request.POST)
    if not form.is_valid():
        return model_refusal(
            request, name, RegistryError.invalid("Check the permission form."), "permissions"
        )
    principal = form.cleaned_data["principal"].strip()
    level = form.cleaned_data["level"]
    entry = (
        {"group_name": principal.removeprefix("group:")}
        if principal.startswith("group:")
        else {"user_name": principal}
    )
    entry["permission_level"] = level
    try:
        registered_model = selectors.registered_model_get(actor=request.user, name=name)
        permissions.require_level(
            request.user, registered_model, Level.CAN_MANAGE, action="change the permissions of"
        )
        current = _current_level(registered_model, principal)
        if (
            current is not None
            and Level.of(level) < Level.of(current)
            and not form.cleaned_data["confirm_downgrade"]
        ):
            raise RegistryError.invalid(
                f"This lowers {principal} from “{level_label(current)}” to "
                f"“{level_label(level)}”. Tick “Yes, lower this grant” and save again to do it."
            )
        account_services.registered_model_permissions_update(
            actor=request.user,
            registered_model=registered_model,
            access_control_list=[entry],
            replace=False,
        )
    except RegistryError as exc:
        return model_refusal(request, name, exc, "permissions")
    if current is None:
        messages.success(request, f"Granted “{level_label(level)}” to {principal}.")
    else:
        messages.success(
            request,
            f"{principal}: “{level_label(current)}” is now “{level_label(level)}”.",
        )
    return _to_anchor(name, "permissions")


@ui_form(model_page)
def model_grant_remove(request: HttpRequest, name: str) -> HttpResponse:
    principal = request.POST.get("principal", "").strip()
    try:
        registered_model = selectors.registered_model_get(actor=request.user, name=name)
        removed = account_services.registered_model_grant_delete(
            actor=request.user,
            registered_model=registered_model,
            user_name="" if principal.startswith("group:") else principal,
            group_name=principal.removeprefix("group:") if principal.startswith("group:") else "",
        )
    except RegistryError as exc:
        return model_refusal(request, name, exc, "permissions")
    if removed:
        messages.success(request, f"Removed the grant of {principal} on this model.")
    else:
        messages.info(request, f"{principal} had no grant of its own on this model.")
    return _to_anchor(name, "permissions")


def _to_anchor(name: str, anchor: str) -> HttpResponse:
    return redirect(reverse("ui:model-detail", kwargs={"name": name}) + f"#{anchor}")


@ui_form(model_page)
def model_policy(request: SignedInHttpRequest, name: str) -> HttpResponse:
    stage = request.POST.get("stage", "")
    form = forms.StagePolicyForm(request.POST, prefix=f"p-{stage}")
    if not form.is_valid():
        problems = "; ".join(str(e) for errors in form.errors.values() for e in errors)
        return model_refusal(
            request, name, RegistryError.invalid(f"Check the policy form: {problems}"), "policies"
        )
    data = form.cleaned_data
    try:
        services.stage_policy_set(
            actor=request.user,
            name=name,
            stage=data["stage"],
            required_approvals=data["required_approvals"],
            allow_self_approval=data["allow_self_approval"],
            allow_direct_transition=data["allow_direct_transition"],
            required_version_tags=data["required_tags"],
            request_ttl_seconds=form.ttl_seconds(),
        )
    except RegistryError as exc:
        return model_refusal(request, name, exc, "policies")
    messages.success(request, f"Saved the policy for moves to {data['stage']}.")
    return _to_anchor(name, "policies")
