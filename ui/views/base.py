"""What every page of the UI goes through (docs/ui.md, "Forms").

- ``ui_view``: a page (GET). Signed-in users only; a sign-in that follows an ended session says
  so; a refusal from a read is a readable error page with the status the API would answer.
- ``ui_form``: a form's POST-only address. A GET shows a readable page that links to the form's
  page (not an empty 405); a POST whose session has ended keeps what was typed and sends the
  user to sign in, then back to the form's page with the text in its form.
- ``refuse``: post/redirect/get for a refusal. The message goes to the messages framework, what
  was typed to the session (for the form's page, once), and the browser is sent back to the
  page with 303, so a reload of the result posts nothing again.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from django import forms as django_forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import LogoutView, redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import render
from django.urls import reverse

from kernel.errors import ErrorCode, RegistryError

# Where the typed text of refused forms waits, by the path of the page it is shown on.
KEPT_SESSION_KEY = "ui_kept_forms"
# Fields never kept: the CSRF token, and what only says which button was pressed.
NOT_KEPT = {"csrfmiddlewaretoken", "next"}
# Fields whose name says they hold a secret are never written to the session either.
SECRET_WORDS = ("password", "secret", "authorization")
# How many pages' typed text a session keeps at most (the oldest go first).
KEPT_PAGES = 10

ENDED_SESSION = (
    "Your session has ended. Sign in again to continue; what you typed in the form is kept."
)
SIGN_IN_FIRST = "Sign in to continue; what you typed in the form is kept."


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


def _had_session(request: HttpRequest) -> bool:
    """The browser sent a session cookie that names no signed-in session: it ended (expired,
    or was cleared on the server). Signing out deletes the cookie, so it is not counted."""
    return settings.SESSION_COOKIE_NAME in request.COOKIES


def wrong_method(request: HttpRequest, page: str, allowed: str) -> HttpResponse:
    """The readable answer to a method the address does not take (405, with ``Allow``)."""
    response = render(
        request, "ui/wrong_method.html", {"page": page, "method": request.method}, status=405
    )
    response["Allow"] = allowed
    return response


def ui_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A page: GET (and HEAD) for signed-in users; a refusal from a read is an error page."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method not in ("GET", "HEAD"):
            return wrong_method(request, request.path, "GET, HEAD")
        if not request.user.is_authenticated:
            if _had_session(request):
                messages.info(request, "Your session has ended. Sign in again to continue.")
            return redirect_to_login(request.get_full_path())
        try:
            return view(request, *args, **kwargs)
        except RegistryError as exc:
            return _error_page(request, exc)

    return wrapped


def keep_typed(request: HttpRequest, page: str, data: QueryDict) -> None:
    """Keep the fields of a form's POST for the page that shows the form, until it shows them
    once (:func:`take_typed`)."""
    typed = {
        key: data.getlist(key)
        for key in data
        if key not in NOT_KEPT and not any(word in key.lower() for word in SECRET_WORDS)
    }
    if not typed:
        return
    kept = dict(request.session.get(KEPT_SESSION_KEY, {}))
    kept.pop(page, None)
    kept[page] = typed
    request.session[KEPT_SESSION_KEY] = dict(list(kept.items())[-KEPT_PAGES:])


def take_typed(request: HttpRequest) -> QueryDict | None:
    """What was typed in a refused (or interrupted) form of this page, once."""
    kept = request.session.get(KEPT_SESSION_KEY)
    if not kept or request.path not in kept:
        return None
    kept = dict(kept)
    typed = kept.pop(request.path)
    request.session[KEPT_SESSION_KEY] = kept
    data = QueryDict(mutable=True)
    for key, values in typed.items():
        data.setlist(key, values)
    return data


_Form = TypeVar("_Form", bound=django_forms.Form)


def bound_if_typed(form_class: type[_Form], typed: QueryDict | None, **options: Any) -> _Form:
    """The form with what was typed in it, if ``typed`` holds any of its fields (by their
    prefixed names: a page's forms have distinct prefixes); else the empty form."""
    empty = form_class(**options)
    if typed is not None and any(empty.add_prefix(name) in typed for name in empty.fields):
        return form_class(typed, **options)
    return empty


def see_other(url: str) -> HttpResponse:
    response = HttpResponseRedirect(url)
    response.status_code = 303
    return response


def refuse(
    request: HttpRequest, exc: RegistryError, *, page: str, anchor: str = ""
) -> HttpResponse:
    """A refused form: the message, the typed text kept for ``page``, and back to ``page``."""
    messages.error(request, exc.message)
    keep_typed(request, page, request.POST)
    return see_other(f"{page}#{anchor}" if anchor else page)


def ui_form(page: Callable[..., str]) -> Callable[[Callable[..., HttpResponse]], Any]:
    """A form's POST-only address; ``page(**url_kwargs)`` is the page that shows the form."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            form_page = page(**kwargs)
            if request.method != "POST":
                return wrong_method(request, form_page, "POST")
            if not request.user.is_authenticated:
                keep_typed(request, form_page, request.POST)
                messages.info(request, ENDED_SESSION if _had_session(request) else SIGN_IN_FIRST)
                return redirect_to_login(form_page)
            try:
                return view(request, *args, **kwargs)
            except RegistryError as exc:
                return _error_page(request, exc)

        return wrapped

    return decorate


class SignOutView(LogoutView):
    """Django's sign-out (POST only), with the readable page for a GET."""

    def http_method_not_allowed(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        return wrong_method(request, reverse("ui:model-list"), "POST")
