"""A registry admin approves a request from the request's own page in the Django admin, in a
real browser (Debian's Chromium, headless), and follows the link to its page in the web UI."""

from __future__ import annotations

import pytest

from registry import services
from registry.models import TransitionRequest
from tests.conftest import PASSWORD
from tests.ui.browser import needs_chromium, screenshot_each_width, sign_in
from tests.ui.conftest import MODEL

pytest.importorskip("playwright.sync_api")

pytestmark = [
    pytest.mark.django_db(transaction=True),
    needs_chromium,
]


def test_an_admin_approves_from_the_requests_own_page(browser, live_server, story):
    story.owner.is_superuser = True
    story.owner.is_staff = True
    story.owner.save(update_fields=["is_superuser", "is_staff"])
    request = services.transition_request_create(
        actor=story.alice, name=MODEL, version=2, stage="Staging", comment="ready"
    )
    page = sign_in(browser, live_server.url, "olivia", PASSWORD)
    page.goto(f"{live_server.url}/admin/registry/transitionrequest/{request.pk}/change/")
    actions = page.get_by_test_id("object-actions")
    screenshot_each_width(page, "admin-request")
    actions.get_by_role("button", name="Approve", exact=True).click()
    page.get_by_text("approved; the version is now in Staging.").wait_for()
    assert TransitionRequest.objects.get().status == "APPROVED"
    assert page.get_by_test_id("object-actions").count() == 0
    page.get_by_test_id("ui-link").click()
    page.wait_for_url(f"{live_server.url}/models/{MODEL}/versions/2/")
    assert page.get_by_test_id("current-stage").inner_text().strip() == "Staging"
