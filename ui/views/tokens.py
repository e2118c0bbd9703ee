"""The signed-in user's API tokens: create one (its secret shown once) and revoke one."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from accounts import selectors as account_selectors
from accounts import services as account_services
from kernel.errors import RegistryError
from ui import forms
from ui.views.base import bound_if_typed, refuse, see_other, take_typed, ui_form, ui_view

# The secret of a token just created waits here until the tokens page shows it, once.
NEW_TOKEN_SESSION_KEY = "ui_new_token"


def tokens_page(**_: Any) -> str:
    return reverse("ui:tokens")


def tokens(request: HttpRequest) -> HttpResponse:
    """The tokens page (GET), and the creation of a token (POST), which redirects back to it
    with the secret kept for that one display: a reload creates nothing (docs/ui.md)."""
    if request.method == "POST":
        return _token_create(request)
    return _tokens_page(request)


@ui_view
def _tokens_page(request: HttpRequest) -> HttpResponse:
    created = request.session.pop(NEW_TOKEN_SESSION_KEY, None)
    typed = take_typed(request)
    response = render(
        request,
        "ui/tokens.html",
        {
            "form": bound_if_typed(forms.TokenCreateForm, typed),
            "created": created,
            "tokens": account_selectors.api_token_list(actor=request.user)[:200],
            "nav": "tokens",
        },
    )
    if created is not None:
        response["Cache-Control"] = "no-store"  # the secret is on this page, once
    return response


@ui_form(tokens_page)
def _token_create(request: HttpRequest) -> HttpResponse:
    form = forms.TokenCreateForm(request.POST)
    if not form.is_valid():
        return refuse(request, RegistryError.invalid("Check the token form."), page=tokens_page())
    try:
        created = account_services.api_token_create(
            actor=request.user,
            name=form.cleaned_data["name"],
            expires_in_days=form.cleaned_data["expires_in_days"],
        )
    except RegistryError as exc:
        return refuse(request, exc, page=tokens_page())
    request.session[NEW_TOKEN_SESSION_KEY] = {"name": created.token.name, "secret": created.secret}
    messages.success(request, f"Created token {created.token.name}.")
    return see_other(tokens_page())


@ui_form(tokens_page)
def token_revoke(request: HttpRequest, code: str) -> HttpResponse:
    try:
        token = account_services.api_token_revoke(actor=request.user, token_id=code)
    except RegistryError as exc:
        messages.error(request, exc.message)
        return redirect("ui:tokens")
    messages.success(request, f"Revoked token {token.name}.")
    return redirect("ui:tokens")
