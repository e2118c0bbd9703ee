"""Deciding a transition request (approve, reject, cancel) from the version's page, and the
requests waiting for the signed-in user."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from accounts import services as account_services
from accounts.requests import SignedInHttpRequest
from kernel.errors import RegistryError
from registry import selectors, services
from registry.models import TransitionRequestStatus
from registry.notifications import notification_settings
from ui import forms
from ui import selectors as ui_selectors
from ui.views.base import ui_form, ui_view
from ui.views.versions import to_version, version_page, version_refusal

DECISIONS = {"approve", "reject", "cancel"}


@ui_form(version_page)
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
    if transition_request.status != TransitionRequestStatus.OPEN:
        return version_refusal(
            request,
            name,
            version,
            RegistryError.invalid(
                f"This request is already {transition_request.get_status_display().lower()}."
            ),
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
        return version_refusal(request, name, version, exc)
    return to_version(name, version)


@ui_view
def waiting(request: HttpRequest) -> HttpResponse:
    rows = ui_selectors.transition_requests_waiting_for(actor=request.user, standing=True)
    return render(
        request,
        "ui/waiting.html",
        {"rows": rows, "nav": "waiting", "waiting_count": len(rows)},
    )


MY_REQUESTS_PER_PAGE = 25


@ui_view
def my_requests(request: HttpRequest) -> HttpResponse:
    """The requests the signed-in user made, newest first, paged: the open ones with where they
    stand (approvals that count of those required, what the move still needs)."""
    rows = ui_selectors.requests_of(actor=request.user)
    page = Paginator(rows, MY_REQUESTS_PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "ui/my_requests.html",
        {
            "page": page,
            "nav": "mine",
            "notifications_on": notification_settings().enabled,
        },
    )


def my_requests_page(**_: Any) -> str:
    return reverse("ui:my-requests")


@ui_form(my_requests_page)
def email_notifications(request: SignedInHttpRequest) -> HttpResponse:
    """Turn the user's own email notifications on or off."""
    enabled = request.POST.get("email_notifications") == "on"
    account_services.user_email_notifications_set(actor=request.user, enabled=enabled)
    messages.success(
        request, "Emails about requests are on." if enabled else "Emails about requests are off."
    )
    return redirect(my_requests_page())
