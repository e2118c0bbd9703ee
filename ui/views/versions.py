"""A version's page: its files, stage moves and requests to move it, the retry of a failed
registration, and its comments."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from accounts import permissions
from accounts.permissions import Level
from accounts.requests import SignedInHttpRequest
from kernel.errors import RegistryError
from registry import selectors, services
from registry.artifacts import paths
from registry.artifacts import selectors as artifact_selectors
from registry.models import ModelVersionStatus, Stage
from registry.provenance import SIGNATURE_NAME
from registry.selectors import provenance as provenance_selectors
from registry.services.aliases import deletion_guards
from ui import forms
from ui import selectors as ui_selectors
from ui.markdown import render as render_markdown
from ui.views.base import bound_if_typed, refuse, take_typed, ui_form, ui_view
from ui.views.models import level_label


def _version_context(request: HttpRequest, name: str, version: int) -> dict[str, Any]:
    actor = request.user
    typed = take_typed(request)
    model_version = selectors.model_version_get(actor=actor, name=name, version=version)
    registered_model = model_version.registered_model
    # Read once for the page: every request's and comment's actions depend on them.
    level = permissions.effective_level(actor, registered_model)
    policies = selectors.stage_policies_effective(registered_model=registered_model)
    manifest, files = artifact_selectors.model_version_files(model_version=model_version)
    requests = selectors.transition_requests_open(actor=actor, name=name, version=version)
    present_tags = {tag.key: tag.value for tag in model_version.tag_list}
    request_rows = [
        {
            "request": row.request,
            "actions": row.actions,
            "readiness": row.readiness,
            "form": bound_if_typed(forms.DecisionForm, typed, prefix=f"r-{row.request.code}"),
        }
        for row in ui_selectors.request_rows(
            actor=actor,
            requests=requests,
            level=level,
            policies=policies,
            present_tags=present_tags,
        )
    ]
    # The signed records of the version's moves, newest last (docs/security.md, "Provenance").
    promotion_records, _more = provenance_selectors.promotion_records_of(
        actor=actor, name=name, version=version, max_results=50
    )
    # Stages the actor could move the version to at once: the level of the move and a policy
    # that allows direct moves. (The service checks again; this only decides what is shown.)
    direct_stages = [
        stage
        for stage in Stage.values
        if stage != model_version.current_stage
        and level >= permissions.transition_level(model_version.current_stage, stage)
        and policies[stage].allow_direct_transition
    ]
    previous, production = selectors.model_version_neighbours(model_version=model_version)
    preview = ui_selectors.mlmodel_preview(manifest)
    context: dict[str, Any] = {
        "model": registered_model,
        "version": model_version,
        "description_html": render_markdown(model_version.description),
        # The summary first (docs/ui.md, "Version page"): what each stage's policy requires of
        # the version's tags, and its values now.
        "gate_needs": ui_selectors.gate_tag_needs(policies=policies, present_tags=present_tags),
        "run_url": ui_selectors.tracking_run_url(model_version.run_id),
        "preview": preview,
        "preview_absence": ""
        if preview is not None
        else ui_selectors.mlmodel_absence(model_version, manifest),
        "compare_previous": previous,
        "compare_production": production if production != model_version.version else None,
        "level_label": level_label(level.name),
        "edit_level_label": level_label(Level.CAN_EDIT.name),
        "manage_level_label": level_label(Level.CAN_MANAGE.name),
        "staging_level_label": level_label(Level.CAN_MANAGE_STAGING_VERSIONS.name),
        "production_level_label": level_label(Level.CAN_MANAGE_PRODUCTION_VERSIONS.name),
        "manifest": manifest,
        "files": files,
        "signature_url": (
            f"{artifact_selectors.ARTIFACTS_PREFIX}/{paths.version_folder(model_version)}/"
            f"{SIGNATURE_NAME}"
            if files and manifest is not None and manifest.signature_key_id
            else ""
        ),
        "promotion_records": promotion_records,
        "request_rows": request_rows,
        # Creation, readiness, the trail, comments and alias moves in one list (docs/ui.md).
        "timeline": ui_selectors.version_timeline(
            actor=actor,
            model_version=model_version,
            manifest=manifest,
            level=level,
            policies=policies,
        ),
        "level": level,
        "is_ready": model_version.status == ModelVersionStatus.READY,
        # The service checks again; this only decides whether the button is shown.
        "can_retry_registration": model_version.status == ModelVersionStatus.FAILED_REGISTRATION
        and level >= Level.CAN_EDIT,
        "direct_stages": direct_stages,
        "transition_form": bound_if_typed(
            forms.TransitionForm,
            typed,
            prefix="t",
            initial={"stage": _suggested_stage(model_version.current_stage)},
        ),
        "comment_form": bound_if_typed(forms.CommentForm, typed, prefix="c"),
        "nav": "models",
        "can_edit": level >= Level.CAN_EDIT,
        "can_manage": level >= Level.CAN_MANAGE,
    }
    # The summary links the model's alias history when an alias ever moved to or from it.
    context["has_alias_history"] = any(entry.kind == "alias" for entry in context["timeline"])
    if level >= Level.CAN_EDIT:
        context["description_form"] = bound_if_typed(
            forms.DescriptionForm,
            typed,
            prefix="d",
            initial={"description": model_version.description},
        )
        context["tag_form"] = bound_if_typed(forms.TagForm, typed, prefix="tag")
        # Tags a stage policy requires before a move: who may set them is the policy's
        # (``stages.check_gate_tags``); the page says so before the click.
        context["gate_tags"] = sorted(
            {key for policy in policies.values() for key in policy.required_version_tags}
        )
    if level >= Level.CAN_MANAGE:
        # Why the version may not be deleted (the service's own guard), before the click.
        context["delete_guards"] = deletion_guards(registered_model, [model_version]).get(
            model_version.version, []
        )
    return context


def _suggested_stage(current: str) -> str:
    """The next stage up, as the request form's default."""
    following: dict[str, str] = {Stage.NONE: Stage.STAGING, Stage.STAGING: Stage.PRODUCTION}
    return following.get(current, Stage.ARCHIVED if current == Stage.PRODUCTION else Stage.STAGING)


@ui_view
def version_detail(request: HttpRequest, name: str, version: int) -> HttpResponse:
    return render(request, "ui/version_detail.html", _version_context(request, name, version))


@ui_view
def version_compare(request: HttpRequest, name: str) -> HttpResponse:
    """Two versions side by side (``?a=3&b=5``): metadata, tags, files digest and signature
    schema, differences marked (docs/ui.md, "Comparing versions"). CAN_READ on the model, as
    the version page; a missing or wrong number is a readable 400, an unknown version 404."""
    a, b = selectors.model_version_pair(
        actor=request.user, name=name, a=request.GET.get("a"), b=request.GET.get("b")
    )
    return render(
        request,
        "ui/version_compare.html",
        {
            "model": a.registered_model,
            "a": a,
            "b": b,
            "comparison": ui_selectors.version_comparison(a, b),
            "nav": "models",
        },
    )


def version_page(name: str, version: int, **_: Any) -> str:
    """The version's page: where its forms are, and where their refusals are shown."""
    return reverse("ui:version-detail", kwargs={"name": name, "version": version})


def version_refusal(
    request: HttpRequest, name: str, version: int, exc: RegistryError, anchor: str = ""
) -> HttpResponse:
    return refuse(request, exc, page=version_page(name, version), anchor=anchor)


def to_version(name: str, version: int, anchor: str = "") -> HttpResponse:
    url = version_page(name, version)
    return redirect(f"{url}#{anchor}" if anchor else url)


@ui_form(version_page)
def version_transition(request: SignedInHttpRequest, name: str, version: int) -> HttpResponse:
    form = forms.TransitionForm(request.POST, prefix="t")
    if not form.is_valid():
        return version_refusal(
            request,
            name,
            version,
            RegistryError.invalid("Choose a target stage."),
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
        return version_refusal(request, name, version, exc)
    return to_version(name, version)


@ui_form(version_page)
def version_registration_retry(
    request: SignedInHttpRequest, name: str, version: int
) -> HttpResponse:
    try:
        services.model_version_registration_retry(actor=request.user, name=name, version=version)
    except RegistryError as exc:
        return version_refusal(request, name, version, exc)
    messages.success(
        request, f"Registration of version {version} retried: its files are being copied again."
    )
    return to_version(name, version)


@ui_form(version_page)
def comment_create(request: SignedInHttpRequest, name: str, version: int) -> HttpResponse:
    form = forms.CommentForm(request.POST, prefix="c")
    if not form.is_valid():
        return version_refusal(
            request, name, version, RegistryError.invalid("Write a comment first."), "comments"
        )
    try:
        services.comment_create(
            actor=request.user, name=name, version=version, comment=form.cleaned_data["comment"]
        )
    except RegistryError as exc:
        return version_refusal(request, name, version, exc, "comments")
    messages.success(request, "Comment added.")
    return to_version(name, version, "comments")


@ui_form(version_page)
def comment_edit(request: SignedInHttpRequest, name: str, version: int, code: str) -> HttpResponse:
    form = forms.CommentForm(request.POST)
    try:
        if not form.is_valid():
            raise RegistryError.invalid("A comment cannot be empty.")
        services.comment_update(actor=request.user, id=code, comment=form.cleaned_data["comment"])
    except RegistryError as exc:
        return version_refusal(request, name, version, exc)
    messages.success(request, "Comment updated.")
    return to_version(name, version, "comments")


@ui_form(version_page)
def comment_delete(
    request: SignedInHttpRequest, name: str, version: int, code: str
) -> HttpResponse:
    try:
        services.comment_delete(actor=request.user, id=code)
    except RegistryError as exc:
        return version_refusal(request, name, version, exc)
    messages.success(request, "Comment deleted.")
    return to_version(name, version, "comments")
