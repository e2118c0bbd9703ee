"""Webhooks in a real browser (Debian's Chromium, headless): the model's owner creates a hook
for the test receiver the webhook tests use, with a secret that is never shown back, sends a
test event the receiver gets signed, sees the hook's health, and disables it after a
confirmation."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD
from tests.ui.browser import needs_chromium, screenshot_each_width, sign_in
from tests.ui.conftest import MODEL
from tests.webhooks.conftest import run_receiver
from webhooks.models import Webhook

pytest.importorskip("playwright.sync_api")

pytestmark = [
    pytest.mark.django_db(transaction=True),
    needs_chromium,
]


def test_create_test_and_disable_a_hook(browser, live_server, story):
    page = sign_in(browser, live_server.url, "olivia", PASSWORD, at="/webhooks/")
    with run_receiver() as receiver:
        page.get_by_test_id("new-webhook").click()
        form = page.get_by_test_id("webhook-form")
        form.get_by_label("Model", exact=True).fill(MODEL)
        form.get_by_label("URL", exact=True).fill(receiver.url)
        form.get_by_label("Model version created", exact=True).check()
        form.get_by_label("Comment created", exact=True).check()
        form.get_by_label("Signing secret").fill("a-secret-for-ci")
        screenshot_each_width(page, "webhook-new")
        form.get_by_role("button", name="Create webhook").click()
        page.get_by_text("Webhook created").wait_for()
        hook = Webhook.objects.get()
        assert hook.secret == "a-secret-for-ci"
        assert "a-secret-for-ci" not in page.content()
        assert "<dt>Signing secret</dt><dd>set</dd>" in page.content()
        assert page.get_by_test_id("health").first.inner_text() == "Active, nothing sent yet"

        page.get_by_test_id("test-webhook").click()
        page.get_by_text("the receiver answered 200").wait_for()
        (received,) = receiver.wait_for(1)
        assert received.json()["event"] == "MODEL_VERSION_CREATED"
        assert "X-Databricks-Signature" in received.headers
        assert page.get_by_test_id("health").first.inner_text() == "Healthy"
        assert "Delivered" in page.get_by_test_id("last-try").inner_text()
        assert page.get_by_test_id("delivery").count() == 1

        # The edit form says what a new URL does to the secret, before anyone saves.
        page.get_by_text("Edit", exact=True).click()
        assert page.get_by_test_id("url-change-note").is_visible()
        screenshot_each_width(page, "webhook-detail")

        questions = []

        def accept(dialog) -> None:
            questions.append(dialog.message)
            dialog.accept()

        page.once("dialog", accept)
        page.get_by_role("button", name="Disable").click()
        page.get_by_text("Webhook disabled: nothing is sent").wait_for()
        assert questions == [
            "Disable this webhook? Nothing is sent to it until it is turned on again."
        ]
        hook.refresh_from_db()
        assert hook.status == "DISABLED"
        assert page.get_by_role("button", name="Turn on").count() == 1

        page.get_by_role("link", name="Webhooks").first.click()
        row = page.get_by_test_id("webhook-row")
        assert row.get_by_test_id("health").inner_text() == "Disabled"
        screenshot_each_width(page, "webhooks")
