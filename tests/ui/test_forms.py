"""Sturdy forms (docs/ui.md, "Forms"): a refusal sends the browser back to the form's page with
303 and what was typed, once; a form's address opened with GET is a readable page; a POST
after the session ended keeps what was typed through the sign-in; an unknown address is the
UI's 404 page, also with DEBUG on."""

from __future__ import annotations

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse

from registry import services
from registry.models import Comment, TransitionRequest
from tests.conftest import PASSWORD
from tests.ui.conftest import MODEL

pytestmark = pytest.mark.django_db

VERSION_URL = f"/models/{MODEL}/versions/2/"
COMMENT_URL = f"/models/{MODEL}/versions/2/comments"


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    "url",
    [
        COMMENT_URL,
        f"/models/{MODEL}/versions/2/transition",
        f"/models/{MODEL}/permissions",
        f"/models/{MODEL}/aliases",
    ],
)
def test_a_forms_address_opened_with_get_is_a_readable_page(story, url):
    response = _client(story.carol).get(url)
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    html = response.content.decode()
    assert "This address receives a form when you press its button" in html
    page = VERSION_URL if "/versions/" in url else f"/models/{MODEL}/"
    assert f'href="{page}"' in html


def test_sign_out_by_get_and_a_post_to_a_page_are_readable_too(story):
    client = _client(story.carol)
    signed_out = client.get(reverse("ui:logout"))
    assert signed_out.status_code == 405
    assert "Nothing to show here" in signed_out.content.decode()
    assert client.get(reverse("ui:model-list")).status_code == 200  # still signed in
    posted = client.post(reverse("ui:waiting"))
    assert posted.status_code == 405
    assert posted["Allow"] == "GET, HEAD"
    assert "This page cannot receive a form (POST)" in posted.content.decode()


def test_a_refused_comment_is_kept_for_the_page_once(story):
    client = _client(story.alice)
    response = client.post(COMMENT_URL, {"c-comment": "x" * 70_000}, follow=True)
    assert response.redirect_chain == [(VERSION_URL + "#comments", 303)]
    html = response.content.decode()
    assert "comment" in html
    assert "x" * 70_000 in html
    assert not Comment.objects.exists()
    assert "x" * 70_000 not in client.get(VERSION_URL).content.decode()


def test_a_comment_posted_after_the_session_ended_survives_the_sign_in(story):
    client = Client()
    client.force_login(story.alice)
    client.get(VERSION_URL)
    Session.objects.all().delete()  # the session ends on the server (expiry, or cleared)

    response = client.post(COMMENT_URL, {"c-comment": "Checked the drift report."}, follow=True)

    login = reverse("ui:login")
    assert response.redirect_chain == [(f"{login}?next={VERSION_URL}", 302)]
    assert "Your session has ended. Sign in again to continue" in response.content.decode()
    assert not Comment.objects.exists()
    signed_in = client.post(
        f"{login}?next={VERSION_URL}",
        {"username": "alice", "password": PASSWORD, "next": VERSION_URL},
        follow=True,
    )
    assert signed_in.redirect_chain == [(VERSION_URL, 302)]
    assert signed_in.context["comment_form"]["comment"].value() == "Checked the drift report."
    assert "Checked the drift report." in signed_in.content.decode()


def test_a_page_opened_after_the_session_ended_says_so_at_sign_in(story):
    client = Client()
    client.force_login(story.alice)
    Session.objects.all().delete()
    response = client.get(VERSION_URL, follow=True)
    assert "Your session has ended. Sign in again to continue." in response.content.decode()
    # Never signed in: no such message.
    fresh = Client().get(VERSION_URL, follow=True)
    assert "Your session has ended" not in fresh.content.decode()


def test_a_decision_on_a_closed_request_is_refused_on_its_page(story):
    request = services.transition_request_create(
        actor=story.alice, name=MODEL, version=2, stage="Staging"
    )
    services.transition_request_cancel(
        actor=story.alice,
        name=MODEL,
        version=2,
        stage="Staging",
        creator="alice",
        request_id=request.code,
    )
    url = f"/models/{MODEL}/versions/2/requests/{request.code}/approve"
    response = _client(story.bob).post(url, {f"r-{request.code}-comment": "late"}, follow=True)
    assert response.redirect_chain == [(VERSION_URL, 303)]
    assert "This request is already cancelled." in response.content.decode()
    assert TransitionRequest.objects.get().status == "CANCELLED"


def test_an_unknown_address_is_the_uis_404_page_also_with_debug(story, settings):
    client = _client(story.carol)
    settings.DEBUG = True
    response = client.get("/no/such/page")
    assert response.status_code == 404
    html = response.content.decode()
    assert 'data-testid="not-found"' in html
    assert "URLconf" not in html  # not Django's technical page
    # The API's addresses are left to the API's own handling.
    assert 'data-testid="not-found"' not in client.get("/api/2.0/mlflow/no-such").content.decode()
    settings.DEBUG = False
    plain = client.get("/no/such/page")
    assert plain.status_code == 404
    assert 'data-testid="not-found"' in plain.content.decode()


def test_a_secret_typed_in_a_refused_form_is_not_kept(story, rf):
    from django.contrib.sessions.backends.db import SessionStore
    from django.http import QueryDict

    from ui.views.base import keep_typed

    request = rf.post("/x")
    request.session = SessionStore()
    data = QueryDict("name=hook&secret=s3cr3t&auth_password=p&csrfmiddlewaretoken=t")
    keep_typed(request, VERSION_URL, data)
    assert request.session["ui_kept_forms"] == {VERSION_URL: {"name": ["hook"]}}
