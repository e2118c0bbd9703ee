"""The rules before the click, in a real browser (Debian's Chromium, headless).

Production needs two approvals, not the requester's, and the tag ``validation_status=passed``.
Bob asks for Production; before anyone approves, the card says all of it, and Bob (the
requester) has no Approve button. Olivia's approval is the first of two and shows as partial on
the card and the timeline. Dave's would complete the count while the tag is still ``pending``,
so he sees why instead of an Approve button that would be refused; once the tag is set, he
approves and the move applies, shown apart from the partial approval.
"""

from __future__ import annotations

import pytest

from accounts.models import PermissionLevel, RegisteredModelGrant
from registry import services
from registry.models import ModelVersion, TransitionRequest
from tests.conftest import PASSWORD
from tests.ui.browser import needs_chromium, screenshot_each_width, sign_in
from tests.ui.conftest import MODEL

pytest.importorskip("playwright.sync_api")

pytestmark = [
    pytest.mark.django_db(transaction=True),
    needs_chromium,
]

VERSION_PATH = f"/models/{MODEL}/versions/2/"


def test_the_policy_is_on_the_request_card_before_anyone_approves(
    browser, live_server, story, django_user_model
):
    dave = django_user_model.objects.create_user(username="dave", password=PASSWORD)
    RegisteredModelGrant.objects.create(
        registered_model=story.model,
        user=dave,
        level=PermissionLevel.CAN_MANAGE_PRODUCTION_VERSIONS,
    )
    services.stage_policy_set(
        actor=story.owner,
        name=MODEL,
        stage="Production",
        required_approvals=2,
        allow_self_approval=False,
        required_version_tags={"validation_status": "passed"},
    )
    services.model_version_tag_set(
        actor=story.owner, name=MODEL, version=2, key="validation_status", value="pending"
    )
    services.transition_request_create(
        actor=story.bob, name=MODEL, version=2, stage="Production", comment="ready to ship"
    )

    # Bob, the requester: the terms, and why he has no Approve button.
    bob = sign_in(browser, live_server.url, "bob", PASSWORD, at=VERSION_PATH)
    card = bob.get_by_test_id("open-request")
    text = " ".join(card.get_by_test_id("readiness").inner_text().split())
    assert "No approvals yet · 2 needed" in text
    assert "the requester may not approve" in text
    assert "needs validation_status=passed, now pending" in text
    assert card.get_by_role("button", name="Approve").count() == 0
    assert card.get_by_role("button", name="Cancel request").count() == 1
    assert "the policy does not let the requester approve" in card.inner_text()

    # Olivia sees the same terms before anyone approved, and gives the first approval.
    olivia = sign_in(browser, live_server.url, "olivia", PASSWORD, at=VERSION_PATH)
    card = olivia.get_by_test_id("open-request")
    assert "No approvals yet · 2 needed" in card.inner_text()
    assert "needs validation_status=passed, now pending" in " ".join(card.inner_text().split())
    screenshot_each_width(olivia, "request-card-policy")
    card.get_by_role("button", name="Approve").click()
    olivia.get_by_text("Approval recorded; the request needs more approvers").wait_for()
    card = olivia.get_by_test_id("open-request")
    assert card.get_by_test_id("approval-count").inner_text() == "Approval 1 of 2"
    assert "You have approved this request" in card.inner_text()
    assert card.get_by_role("button", name="Approve").count() == 0
    timeline = olivia.get_by_test_id("timeline")
    assert timeline.get_by_test_id("partial-approval").count() == 1
    assert "Approval 1 of 2 (the request stays open)" in timeline.inner_text()
    assert "Approved request" not in timeline.inner_text()

    # Dave's approval would complete the count, and the tag is missing: no button, the reason.
    page = sign_in(browser, live_server.url, "dave", PASSWORD, at=VERSION_PATH)
    card = page.get_by_test_id("open-request")
    assert card.get_by_role("button", name="Approve").count() == 0
    assert card.get_by_role("button", name="Reject").count() == 1
    note = card.get_by_test_id("viewer-note").inner_text()
    assert "Your approval would complete the count" in note
    assert "validation_status=passed (now pending)" in note
    screenshot_each_width(page, "request-card-blocked")

    # With the tag set, his approval completes the request and applies the move.
    services.model_version_tag_set(
        actor=story.owner, name=MODEL, version=2, key="validation_status", value="passed"
    )
    page.reload()
    card = page.get_by_test_id("open-request")
    assert "needs validation_status=passed, present" in " ".join(card.inner_text().split())
    card.get_by_role("button", name="Approve").click()
    page.get_by_text("Approved: version 2 is now in Production.").wait_for()
    assert ModelVersion.objects.get(registered_model=story.model, version=2).current_stage == (
        "Production"
    )
    assert TransitionRequest.objects.get().status == "APPROVED"
    timeline = page.get_by_test_id("timeline")
    assert timeline.get_by_test_id("partial-approval").count() == 1
    assert timeline.locator(".event-approved_request").count() == 1
    # The tag's story is on the same timeline (docs/decisions/0022-version-tag-history.md).
    changes = [" ".join(t.split()) for t in timeline.get_by_test_id("tag-change").all_inner_texts()]
    assert changes == [
        "olivia set validation_status = pending",
        "olivia set validation_status = passed (was pending)",
    ]
    screenshot_each_width(page, "timeline-partial-and-final")
