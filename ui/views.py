"""Pages of the web UI. Each view reads through a selector and writes through a service with
``actor=request.user``, so the UI can do exactly what the API would allow (docs/architecture.md,
"Layers").

A POST that a service refuses re-renders its page with the refusal as a message and the form
as it was typed, with the status the API would answer; a POST that succeeds redirects (so a
reload does not repeat it) and says what happened.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import permissions
from accounts import selectors as account_selectors
from accounts import services as account_services
from accounts.permissions import Level
from kernel.errors import ErrorCode, RegistryError
from registry import selectors, services
from registry.artifacts import selectors as artifact_selectors
from registry.models import ModelVersionStatus, Stage, TransitionRequestStatus
from ui import forms
from ui import selectors as ui_selectors
from ui.markdown import render as render_markdown
from webhooks import selectors as webhook_selectors
from webhooks.models import WebhookFlavor
from webhooks.services import management as webhook_services

MODELS_PER_PAGE = 20
DELIVERIES_PER_PAGE = 50

# --- Helpers ----------------------------------------------------------------------------------


def _error_page(request: HttpRequest, exc: RegistryError) -> HttpResponse:
    return render(
        request,
        "ui/error.html",
        {"error": exc, "title": _error_title(exc)},
        status=exc.http_status,
    )


def _error_title(exc: RegistryError) -> str:
    return {
        ErrorCode.RESOURCE_DOES_NOT_EXIST: "Not found",
        ErrorCode.PERMISSION_DENIED: "Not allowed",
        ErrorCode.UNAUTHENTICATED: "Sign-in required",
    }.get(exc.code, "Cannot do that")


def ui_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Signed-in users only; a refusal from a read becomes a readable error page."""

    @login_required
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except RegistryError as exc:
            return _error_page(request, exc)

    return wrapped


# --- Models -----------------------------------------------------------------------------------


@require_GET
@ui_view
def home(request: HttpRequest) -> HttpResponse:
    return redirect("ui:model-list")


@require_GET
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
            order_by=["name ASC"],
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


def _model_context(request: HttpRequest, name: str, **extra: Any) -> dict[str, Any]:
    registered_model = selectors.registered_model_detail(actor=request.user, name=name)
    level = permissions.effective_level(request.user, registered_model)
    versions = selectors.model_versions_newest(registered_model=registered_model, limit=200)
    context: dict[str, Any] = {
        "model": registered_model,
        "description_html": render_markdown(registered_model.description),
        "versions": versions,
        "level": level,
        "can_manage": level >= Level.CAN_MANAGE,
        "can_edit": level >= Level.CAN_EDIT,
        "alias_form": forms.AliasMoveForm(prefix="a"),
        "nav": "models",
        **ui_selectors.alias_panel(
            actor=request.user, registered_model=registered_model, level=level
        ),
    }
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
        context.setdefault("grant_form", forms.GrantForm())
        context.setdefault(
            "policy_form", forms.StagePolicyForm(initial={"stage": Stage.PRODUCTION})
        )
    context.update(extra)
    return context


@require_GET
@ui_view
def model_detail(request: HttpRequest, name: str) -> HttpResponse:
    return render(request, "ui/model_detail.html", _model_context(request, name))


def _model_refusal(
    request: HttpRequest, name: str, exc: RegistryError, **forms_typed: Any
) -> HttpResponse:
    messages.error(request, exc.message)
    return render(
        request,
        "ui/model_detail.html",
        _model_context(request, name, **forms_typed),
        status=exc.http_status,
    )


@require_POST
@ui_view
def model_grant(request: HttpRequest, name: str) -> HttpResponse:
    form = forms.GrantForm(request.POST)
    if not form.is_valid():
        return _model_refusal(
            request, name, RegistryError.invalid("Check the permission form."), grant_form=form
        )
    principal = form.cleaned_data["principal"].strip()
    entry = (
        {"group_name": principal.removeprefix("group:")}
        if principal.startswith("group:")
        else {"user_name": principal}
    )
    entry["permission_level"] = form.cleaned_data["level"]
    try:
        registered_model = selectors.registered_model_get(actor=request.user, name=name)
        account_services.registered_model_permissions_update(
            actor=request.user,
            registered_model=registered_model,
            access_control_list=[entry],
            replace=False,
        )
    except RegistryError as exc:
        return _model_refusal(request, name, exc, grant_form=form)
    messages.success(request, f"Granted {form.cleaned_data['level']} to {principal}.")
    return redirect("ui:model-detail", name=name)


@require_POST
@ui_view
def model_policy(request: HttpRequest, name: str) -> HttpResponse:
    form = forms.StagePolicyForm(request.POST)
    if not form.is_valid():
        return _model_refusal(
            request, name, RegistryError.invalid("Check the policy form."), policy_form=form
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
        )
    except RegistryError as exc:
        return _model_refusal(request, name, exc, policy_form=form)
    messages.success(request, f"Saved the policy for moves to {data['stage']}.")
    return redirect("ui:model-detail", name=name)


# --- Versions ---------------------------------------------------------------------------------


def _version_context(request: HttpRequest, name: str, version: int, **typed: Any) -> dict[str, Any]:
    actor = request.user
    model_version = selectors.model_version_get(actor=actor, name=name, version=version)
    registered_model = model_version.registered_model
    # Read once for the page: every request's and comment's actions depend on them.
    level = permissions.effective_level(actor, registered_model)
    policies = selectors.stage_policies_effective(registered_model=registered_model)
    manifest, files = artifact_selectors.model_version_files(model_version=model_version)
    requests = selectors.transition_requests_open(actor=actor, name=name, version=version)
    decision_forms = typed.pop("decision_forms", {})
    request_rows = [
        {
            "request": row.request,
            "actions": row.actions,
            "form": decision_forms.get(str(row.request.code))
            or forms.DecisionForm(prefix=f"r-{row.request.code}"),
        }
        for row in ui_selectors.request_rows(
            actor=actor, requests=requests, level=level, policies=policies
        )
    ]
    comments = selectors.model_version_comments(model_version=model_version, limit=500)
    # Stages the actor could move the version to at once: the level of the move and a policy
    # that allows direct moves. (The service checks again; this only decides what is shown.)
    direct_stages = [
        stage
        for stage in Stage.values
        if stage != model_version.current_stage
        and level >= permissions.transition_level(model_version.current_stage, stage)
        and policies[stage].allow_direct_transition
    ]
    context = {
        "model": registered_model,
        "version": model_version,
        "description_html": render_markdown(model_version.description),
        "manifest": manifest,
        "files": files,
        "request_rows": request_rows,
        "comment_rows": ui_selectors.comment_rows(actor=actor, comments=comments, level=level),
        "activities": selectors.model_version_activities(actor=actor, name=name, version=version),
        "level": level,
        "is_ready": model_version.status == ModelVersionStatus.READY,
        # The service checks again; this only decides whether the button is shown.
        "can_retry_registration": model_version.status == ModelVersionStatus.FAILED_REGISTRATION
        and level >= Level.CAN_EDIT,
        "direct_stages": direct_stages,
        "transition_form": typed.pop("transition_form", None)
        or forms.TransitionForm(
            prefix="t", initial={"stage": _suggested_stage(model_version.current_stage)}
        ),
        "comment_form": typed.pop("comment_form", None) or forms.CommentForm(prefix="c"),
        "nav": "models",
    }
    context.update(typed)
    return context


def _suggested_stage(current: str) -> str:
    """The next stage up, as the request form's default."""
    return {Stage.NONE: Stage.STAGING, Stage.STAGING: Stage.PRODUCTION}.get(
        current, Stage.ARCHIVED if current == Stage.PRODUCTION else Stage.STAGING
    )


@require_GET
@ui_view
def version_detail(request: HttpRequest, name: str, version: int) -> HttpResponse:
    return render(request, "ui/version_detail.html", _version_context(request, name, version))


def _version_refusal(
    request: HttpRequest, name: str, version: int, exc: RegistryError, **typed: Any
) -> HttpResponse:
    messages.error(request, exc.message)
    return render(
        request,
        "ui/version_detail.html",
        _version_context(request, name, version, **typed),
        status=exc.http_status,
    )


def _to_version(name: str, version: int, anchor: str = "") -> HttpResponse:
    url = reverse("ui:version-detail", kwargs={"name": name, "version": version})
    return redirect(f"{url}#{anchor}" if anchor else url)


@require_POST
@ui_view
def version_transition(request: HttpRequest, name: str, version: int) -> HttpResponse:
    form = forms.TransitionForm(request.POST, prefix="t")
    if not form.is_valid():
        return _version_refusal(
            request,
            name,
            version,
            RegistryError.invalid("Choose a target stage."),
            transition_form=form,
        )
    data = form.cleaned_data
    try:
        if request.POST.get("action") == "move":
            services.model_version_stage_transition(
                actor=request.user,
                name=name,
                version=version,
                stage=data["stage"],
                archive_existing_versions=data["archive_existing_versions"],
                comment=data["comment"],
            )
            messages.success(request, f"Moved version {version} to {data['stage']}.")
        else:
            services.transition_request_create(
                actor=request.user,
                name=name,
                version=version,
                stage=data["stage"],
                comment=data["comment"],
            )
            messages.success(
                request, f"Requested the move of version {version} to {data['stage']}."
            )
    except RegistryError as exc:
        return _version_refusal(request, name, version, exc, transition_form=form)
    return _to_version(name, version)


@require_POST
@ui_view
def version_registration_retry(request: HttpRequest, name: str, version: int) -> HttpResponse:
    try:
        services.model_version_registration_retry(actor=request.user, name=name, version=version)
    except RegistryError as exc:
        return _version_refusal(request, name, version, exc)
    messages.success(
        request, f"Registration of version {version} retried: its files are being copied again."
    )
    return _to_version(name, version)


DECISIONS = {"approve", "reject", "cancel"}


@require_POST
@ui_view
def request_decide(
    request: HttpRequest, name: str, version: int, code: str, decision: str
) -> HttpResponse:
    model_version = selectors.model_version_get(actor=request.user, name=name, version=version)
    transition_request = (
        selectors.transition_request_by_code(model_version=model_version, code=code)
        if decision in DECISIONS
        else None
    )
    if transition_request is None:
        raise RegistryError.not_found("No such transition request.")
    form = forms.DecisionForm(request.POST, prefix=f"r-{code}")
    form.is_valid()  # every field is optional
    data = form.cleaned_data
    typed = {"decision_forms": {str(transition_request.code): form}}
    if transition_request.status != TransitionRequestStatus.OPEN:
        return _version_refusal(
            request,
            name,
            version,
            RegistryError.invalid(
                f"This request is already {transition_request.get_status_display().lower()}."
            ),
            **typed,
        )
    common = {
        "actor": request.user,
        "name": name,
        "version": version,
        "stage": transition_request.to_stage,
        "comment": data.get("comment", ""),
        # The request this form was shown for, and no other (a rename could put another
        # one behind the same model name, version and stage before the service locks).
        "request_id": transition_request.code,
    }
    try:
        if decision == "approve":
            services.transition_request_approve(
                **common, archive_existing_versions=data.get("archive_existing_versions", False)
            )
            transition_request.refresh_from_db()
            if transition_request.status == TransitionRequestStatus.APPROVED:
                messages.success(
                    request, f"Approved: version {version} is now in {transition_request.to_stage}."
                )
            else:
                messages.success(
                    request, "Approval recorded; the request needs more approvers to complete."
                )
        elif decision == "reject":
            services.transition_request_reject(**common)
            messages.success(request, "Rejected the request.")
        else:
            services.transition_request_cancel(
                **common, creator=transition_request.requested_by_username
            )
            messages.success(request, "Cancelled the request.")
    except RegistryError as exc:
        return _version_refusal(request, name, version, exc, **typed)
    return _to_version(name, version)


@require_POST
@ui_view
def comment_create(request: HttpRequest, name: str, version: int) -> HttpResponse:
    form = forms.CommentForm(request.POST, prefix="c")
    if not form.is_valid():
        return _version_refusal(
            request, name, version, RegistryError.invalid("Write a comment first."),
            comment_form=form,
        )  # fmt: skip
    try:
        services.comment_create(
            actor=request.user, name=name, version=version, comment=form.cleaned_data["comment"]
        )
    except RegistryError as exc:
        return _version_refusal(request, name, version, exc, comment_form=form)
    messages.success(request, "Comment added.")
    return _to_version(name, version, "comments")


@require_POST
@ui_view
def comment_edit(request: HttpRequest, name: str, version: int, code: str) -> HttpResponse:
    form = forms.CommentForm(request.POST)
    try:
        if not form.is_valid():
            raise RegistryError.invalid("A comment cannot be empty.")
        services.comment_update(actor=request.user, id=code, comment=form.cleaned_data["comment"])
    except RegistryError as exc:
        return _version_refusal(request, name, version, exc)
    messages.success(request, "Comment updated.")
    return _to_version(name, version, "comments")


@require_POST
@ui_view
def comment_delete(request: HttpRequest, name: str, version: int, code: str) -> HttpResponse:
    try:
        services.comment_delete(actor=request.user, id=code)
    except RegistryError as exc:
        return _version_refusal(request, name, version, exc)
    messages.success(request, "Comment deleted.")
    return _to_version(name, version, "comments")


# --- Waiting for me ---------------------------------------------------------------------------


@require_GET
@ui_view
def waiting(request: HttpRequest) -> HttpResponse:
    rows = ui_selectors.transition_requests_waiting_for(actor=request.user)
    return render(request, "ui/waiting.html", {"rows": rows, "nav": "waiting"})


# --- Webhooks ---------------------------------------------------------------------------------


@require_GET
@ui_view
def webhook_list(request: HttpRequest) -> HttpResponse:
    webhooks = [
        hook
        for flavor in WebhookFlavor.values
        for hook in webhook_selectors.webhook_list(actor=request.user, flavor=flavor)[:100]
    ]
    return render(request, "ui/webhook_list.html", {"webhooks": webhooks, "nav": "webhooks"})


def _webhook_context(request: HttpRequest, code: str) -> dict[str, Any]:
    webhook = webhook_selectors.webhook_get_any(actor=request.user, webhook_id=code)
    deliveries = list(
        webhook_selectors.delivery_list(webhook=webhook, with_attempts=True)[:DELIVERIES_PER_PAGE]
    )
    return {"webhook": webhook, "deliveries": deliveries, "nav": "webhooks"}


@require_GET
@ui_view
def webhook_detail(request: HttpRequest, code: str) -> HttpResponse:
    return render(request, "ui/webhook_detail.html", _webhook_context(request, code))


@require_POST
@ui_view
def delivery_redeliver(request: HttpRequest, code: str, delivery_code: str) -> HttpResponse:
    try:
        webhook = webhook_selectors.webhook_get_any(actor=request.user, webhook_id=code)
        delivery = webhook_selectors.delivery_get(webhook=webhook, delivery_id=delivery_code)
        webhook_services.webhook_delivery_redeliver(actor=request.user, delivery=delivery)
    except RegistryError as exc:
        messages.error(request, exc.message)
        return render(
            request,
            "ui/webhook_detail.html",
            _webhook_context(request, code),
            status=exc.http_status,
        )
    messages.success(request, f"Delivery {delivery.code} queued again.")
    return redirect("ui:webhook-detail", code=code)


# --- API tokens -------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@ui_view
def tokens(request: HttpRequest) -> HttpResponse:
    created = None
    status = 200
    form = forms.TokenCreateForm(request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            try:
                created = account_services.api_token_create(
                    actor=request.user,
                    name=form.cleaned_data["name"],
                    expires_in_days=form.cleaned_data["expires_in_days"],
                )
                form = forms.TokenCreateForm()
            except RegistryError as exc:
                messages.error(request, exc.message)
                status = exc.http_status
        else:
            messages.error(request, "Check the token form.")
            status = 400
    response = render(
        request,
        "ui/tokens.html",
        {
            "form": form,
            "created": created,
            "tokens": account_selectors.api_token_list(actor=request.user)[:200],
            "nav": "tokens",
        },
        status=status,
    )
    if created is not None:
        response["Cache-Control"] = "no-store"  # the secret is on this page, once
    return response


@require_POST
@ui_view
def token_revoke(request: HttpRequest, code: str) -> HttpResponse:
    try:
        token = account_services.api_token_revoke(actor=request.user, token_id=code)
    except RegistryError as exc:
        messages.error(request, exc.message)
        return redirect("ui:tokens")
    messages.success(request, f"Revoked token {token.name}.")
    return redirect("ui:tokens")
