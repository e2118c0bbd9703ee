"""The navigation's count and "My requests" in a real browser (Debian's Chromium, headless):
Bob sees one request waiting, approves it (the first of two) and the count goes; Alice finds
her request on "My requests" with "Approval 1 of 2". Photographed at 1280 and 390 px."""

from __future__ import annotations

import pytest

from registry import services
from tests.conftest import PASSWORD
from tests.ui.browser import needs_chromium, screenshot_each_width, sign_in
from tests.ui.conftest import MODEL

pytest.importorskip("playwright.sync_api")

pytestmark = [
    pytest.mark.django_db(transaction=True),
    needs_chromium,
]


def test_the_count_goes_once_approved_and_the_requester_sees_where_it_stands(
    browser, live_server, story
):
    services.stage_policy_set(
        actor=story.owner, name=MODEL, stage="Production", required_approvals=2
    )
    services.transition_request_create(
        actor=story.alice, name=MODEL, version=2, stage="Production", comment="ready"
    )
    bob = sign_in(browser, live_server.url, "bob", PASSWORD)
    assert bob.get_by_test_id("waiting-count").inner_text() == "1"
    bob.get_by_role("link", name="Waiting for me").click()
    screenshot_each_width(bob, "waiting-count")
    bob.get_by_test_id("waiting-table").get_by_role("link", name="Version 2").click()
    bob.get_by_test_id("open-request").get_by_role("button", name="Approve").click()
    bob.get_by_text("Approval recorded").wait_for()
    assert bob.get_by_test_id("waiting-count").count() == 0
    bob.get_by_role("link", name="Waiting for me").click()
    bob.get_by_text("Nothing is waiting for you.").wait_for()

    alice = sign_in(browser, live_server.url, "alice", PASSWORD)
    alice.get_by_role("link", name="My requests").click()
    table = alice.get_by_test_id("my-requests-table")
    assert table.get_by_test_id("standing").inner_text() == "Approval 1 of 2"
    screenshot_each_width(alice, "my-requests")
