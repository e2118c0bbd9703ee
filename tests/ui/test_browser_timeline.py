"""A version's one timeline in a real browser (Debian's Chromium, headless): Alice comments
with a link, which opens as a link, edits her comment in place, and sees the alias moves and
the approvals ("Approval 1 of 2") among the comments, with the add box under them."""

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

VERSION_PATH = f"/models/{MODEL}/versions/2/"


def test_one_timeline_with_comments_in_place(browser, live_server, story):
    services.stage_policy_set(
        actor=story.owner, name=MODEL, stage="Production", required_approvals=2
    )
    services.registered_model_alias_set(actor=story.owner, name=MODEL, alias="champion", version=1)
    services.registered_model_alias_set(actor=story.owner, name=MODEL, alias="champion", version=2)
    services.transition_request_create(
        actor=story.alice, name=MODEL, version=2, stage="Production", comment="ready to ship"
    )
    services.transition_request_approve(actor=story.bob, name=MODEL, version=2, stage="Production")

    page = sign_in(browser, live_server.url, "alice", PASSWORD, at=VERSION_PATH)
    page.get_by_label("New comment").fill("Drift report: https://example.com/drift/2 looks fine.")
    page.get_by_role("button", name="Add comment").click()
    page.get_by_text("Comment added.").wait_for()

    timeline = page.get_by_test_id("timeline")
    entries = [" ".join(text.split()) for text in timeline.locator("li.event").all_inner_texts()]
    kinds = timeline.locator("li.event").evaluate_all("els => els.map(e => e.dataset.kind)")
    assert kinds[:2] == ["created", "ready"]
    assert kinds.count("alias") == 1
    assert kinds[-1] == "comment"
    assert "Alias @champion · moved here from version 1" in entries[kinds.index("alias")]
    assert any(entry.startswith("Approval 1 of 2 (the request stays open)") for entry in entries)
    # The comment is on the timeline once, and nowhere else on the page.
    assert page.get_by_test_id("comment").count() == 1
    assert page.locator("main").inner_text().count("Drift report:") == 1
    link = timeline.get_by_role("link", name="https://example.com/drift/2")
    assert link.get_attribute("href") == "https://example.com/drift/2"
    assert "nofollow" in (link.get_attribute("rel") or "")

    # Edited in place; the page comes back to the timeline with the new text.
    comment = page.get_by_test_id("comment")
    comment.get_by_text("Edit", exact=True).click()
    comment.get_by_label("Edit comment").fill("Drift report: https://example.com/drift/3")
    comment.get_by_role("button", name="Save").click()
    page.get_by_text("Comment updated.").wait_for()
    assert page.url.endswith("#comments")
    comment = page.get_by_test_id("comment")
    assert "(edited)" in comment.inner_text()
    assert comment.get_by_role("link", name="https://example.com/drift/3").count() == 1
    screenshot_each_width(page, "version-timeline")
