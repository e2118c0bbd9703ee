"""Sturdy forms in a real browser (Debian's Chromium, headless): a reload after a refused form
and after creating a token posts nothing; a comment typed when the session has ended survives
the sign-in; rejecting asks first and records the optional reason; a form's address opened
directly and an unknown address are readable pages (docs/ui.md, "Forms")."""

from __future__ import annotations

import pytest
from django.contrib.sessions.models import Session

from accounts.models import ApiToken
from registry import services
from registry.models import Activity, Comment, TransitionRequest
from tests.conftest import PASSWORD
from tests.ui.browser import needs_chromium, screenshot_each_width, sign_in
from tests.ui.conftest import MODEL

pytest.importorskip("playwright.sync_api")

pytestmark = [
    pytest.mark.django_db(transaction=True),
    needs_chromium,
]

VERSION_PATH = f"/models/{MODEL}/versions/2/"


def _posts(page) -> list[str]:
    """The POSTs the page sends from now on (their URLs)."""
    sent: list[str] = []
    page.on(
        "request", lambda request: sent.append(request.url) if request.method == "POST" else None
    )
    return sent


def test_a_reload_after_a_refused_form_posts_nothing_and_keeps_the_text(
    browser, live_server, story
):
    services.transition_request_create(actor=story.alice, name=MODEL, version=2, stage="Production")
    page = sign_in(browser, live_server.url, "alice", PASSWORD, at=VERSION_PATH)
    page.get_by_text("Request a move", exact=True).click()  # the form is behind a button
    form = page.get_by_test_id("transition-form")
    form.get_by_label("Target stage").select_option("Production")
    form.get_by_label("Comment").fill("Second try, with the new metrics.")
    sent = _posts(page)
    page.get_by_role("button", name="Request transition").click()
    page.get_by_text("already exists").wait_for()
    assert len(sent) == 1
    assert page.url == f"{live_server.url}{VERSION_PATH}"  # redirected to the page: a GET
    form = page.get_by_test_id("transition-form")
    assert form.get_by_label("Comment").input_value() == "Second try, with the new metrics."
    assert form.get_by_label("Target stage").input_value() == "Production"
    screenshot_each_width(page, "refused-form-kept")

    page.reload()
    page.get_by_test_id("transition-form").wait_for(state="attached")  # closed again
    assert len(sent) == 1  # the reload sent no POST
    assert TransitionRequest.objects.count() == 1
    # The message and the typed text were shown once.
    assert page.get_by_text("already exists").count() == 0


def test_a_reload_after_creating_a_token_creates_no_second_one(browser, live_server, story):
    page = sign_in(browser, live_server.url, "alice", PASSWORD, at="/tokens/")
    page.get_by_label("Token name").fill("deploy pipeline")
    sent = _posts(page)
    page.get_by_role("button", name="Create token").click()
    secret = page.get_by_test_id("new-token").locator("code").inner_text()
    assert secret.startswith("mrt_")
    assert page.url == f"{live_server.url}/tokens/"

    page.reload()
    page.get_by_role("heading", name="Your tokens").wait_for()
    assert len(sent) == 1
    assert ApiToken.objects.filter(user=story.alice).count() == 1
    assert page.get_by_test_id("new-token").count() == 0  # the secret is shown once
    assert secret not in page.content()


def test_a_comment_typed_when_the_session_has_ended_survives_the_sign_in(
    browser, live_server, story
):
    page = sign_in(browser, live_server.url, "alice", PASSWORD, at=VERSION_PATH)
    page.get_by_label("New comment").fill("Checked the drift report: within bounds.")
    Session.objects.all().delete()  # the session ends on the server while she types

    page.get_by_role("button", name="Add comment").click()
    page.get_by_text("Your session has ended. Sign in again to continue").wait_for()
    assert "/login/" in page.url
    assert not Comment.objects.exists()
    screenshot_each_width(page, "login-session-ended")
    page.get_by_label("User name").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    page.wait_for_url(f"{live_server.url}{VERSION_PATH}")
    box = page.get_by_label("New comment")
    assert box.input_value() == "Checked the drift report: within bounds."
    page.get_by_role("button", name="Add comment").click()
    page.get_by_text("Comment added.").wait_for()
    assert list(Comment.objects.values_list("text", flat=True)) == [
        "Checked the drift report: within bounds."
    ]


def test_reject_asks_first_and_records_the_reason(browser, live_server, story):
    services.transition_request_create(actor=story.alice, name=MODEL, version=2, stage="Production")
    page = sign_in(browser, live_server.url, "bob", PASSWORD, at=VERSION_PATH)
    card = page.get_by_test_id("open-request")
    card.get_by_label("Comment on your decision").fill("The drift report is missing.")
    questions: list[str] = []

    def dismiss(dialog) -> None:
        questions.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    card.get_by_role("button", name="Reject").click()
    page.wait_for_timeout(200)
    assert questions == [
        "Reject this request? The comment above, if any, is recorded as the reason."
    ]
    assert TransitionRequest.objects.get().status == "OPEN"

    page.once("dialog", lambda dialog: dialog.accept())
    card.get_by_role("button", name="Reject").click()
    page.get_by_text("Rejected the request.").wait_for()
    assert TransitionRequest.objects.get().status == "REJECTED"
    rejected = Activity.objects.get(activity_type="REJECTED_REQUEST")
    assert rejected.comment == "The drift report is missing."


def test_a_forms_address_and_an_unknown_address_are_readable_pages(browser, live_server, story):
    page = sign_in(browser, live_server.url, "carol", PASSWORD, at=VERSION_PATH)
    page.goto(f"{live_server.url}/models/{MODEL}/versions/2/comments")
    assert page.get_by_test_id("wrong-method").is_visible()
    screenshot_each_width(page, "wrong-method")
    page.get_by_role("link", name="Go to the page with the form").click()
    page.wait_for_url(f"{live_server.url}{VERSION_PATH}")
    page.goto(f"{live_server.url}/no/such/page")
    assert page.get_by_test_id("not-found").is_visible()
    screenshot_each_width(page, "not-found")
