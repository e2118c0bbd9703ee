"""Governed aliases in a real browser (Debian's Chromium, headless) against a live server.

``@champion`` is protected (Bob may move it directly). Alice (CAN_EDIT) asks on the model page
that it name version 2; Bob approves there; the page shows the alias on version 2 with its
stage and the move in the history; Bob rolls it back to version 1. Photographed at 1280 and
390 px and checked for horizontal overflow, as the other pages are.
"""

from __future__ import annotations

import re

import pytest
from django.db import connections

from registry import services
from registry.models import AliasRequest, RegisteredModelAlias
from tests.conftest import PASSWORD
from tests.ui.browser import CHROMIUM, CHROMIUM_ARGS, needs_chromium, screenshot_each_width
from tests.ui.conftest import MODEL

playwright_sync = pytest.importorskip("playwright.sync_api")

pytestmark = [
    pytest.mark.django_db(transaction=True),
    needs_chromium,
]


@pytest.fixture
def browser(monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with playwright_sync.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
            connections.close_all()


def _sign_in(browser, live_server, username: str):
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r".*/models/$"))
    page.goto(f"{live_server.url}/models/{MODEL}/")
    return page


def test_request_approve_history_and_rollback_of_champion(browser, live_server, story):
    services.registered_model_alias_set(actor=story.owner, name=MODEL, alias="champion", version=1)
    services.alias_policy_set(
        actor=story.owner, name=MODEL, alias="champion", protected=True, direct_users=["bob"]
    )

    # Alice asks that @champion name version 2.
    alice = _sign_in(browser, live_server, "alice")
    form = alice.get_by_test_id("alias-form")
    form.get_by_label("Alias").fill("champion")
    form.get_by_label("Version").fill("2")
    form.get_by_label("Comment").fill("Beats version 1 on the March holdout.")
    form.get_by_role("button", name="Request the move").click()
    alice.get_by_text("Requested that @champion name version 2.").wait_for()
    assert alice.get_by_test_id("alias-request").locator('[data-action="approve"]').count() == 0

    # Bob approves it on the model page; the alias moves, and the page says so.
    bob = _sign_in(browser, live_server, "bob")
    request_box = bob.get_by_test_id("alias-request")
    assert "Beats version 1 on the March holdout." in request_box.inner_text()
    request_box.get_by_label("Comment on your decision").fill("Reviewed.")
    request_box.get_by_role("button", name="Approve").click()
    bob.get_by_text("Approved: @champion now names version 2.").wait_for()
    row = bob.get_by_test_id("alias-table").locator('tr[data-alias="champion"]')
    assert "Version 2" in row.inner_text()
    history = bob.get_by_test_id("alias-history").inner_text()
    assert "@champion: version 1 → version 2" in history
    assert "Approved request by bob" in history
    screenshot_each_width(bob, "model-aliases")

    # Bob, named by the policy, rolls it back at once.
    row.get_by_role("button", name="Roll back").click()
    bob.get_by_text("Rolled @champion back to version 1.").wait_for()
    assert "@champion: version 2 → version 1" in bob.get_by_test_id("alias-history").inner_text()
    assert dict(RegisteredModelAlias.objects.values_list("alias", "model_version__version")) == {
        "champion": 1
    }
    assert AliasRequest.objects.get().status == "APPROVED"
