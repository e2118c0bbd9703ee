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


def test_create_an_mlflow_style_hook(browser, live_server, story, django_user_model):
    """A registry admin picks the MLflow flavour: the form swaps the Databricks events for
    MLflow's entity.action ones and hides what MLflow hooks do not take; the secret the
    registry generates is shown once, and the receiver checks the test send with it."""
    from tests.webhooks.snippets import readme_function

    django_user_model.objects.create_superuser("root", password=PASSWORD)
    page = sign_in(browser, live_server.url, "root", PASSWORD, at="/webhooks/new/")
    with run_receiver() as receiver:
        form = page.get_by_test_id("webhook-form")
        assert form.get_by_test_id("databricks-events").is_visible()
        assert not form.get_by_test_id("mlflow-events").is_visible()
        form.get_by_label("Kind").select_option("MLFLOW")
        assert not form.get_by_test_id("databricks-events").is_visible()
        assert form.get_by_test_id("mlflow-events").is_visible()
        assert not form.get_by_label("Authorization header").is_visible()
        assert not form.get_by_label("Model", exact=True).is_visible()
        form.get_by_label("Name", exact=True).fill("deploys")
        form.get_by_label("URL", exact=True).fill(receiver.url)
        form.get_by_label("model_version.created", exact=True).check()
        form.get_by_label("model_version_tag.set", exact=True).check()
        assert form.get_by_label("No secret typed: generate one").is_checked()
        screenshot_each_width(page, "webhook-new-mlflow")
        form.get_by_role("button", name="Create webhook").click()
        page.get_by_text("Webhook created").wait_for()
        hook = Webhook.objects.get()
        assert (hook.flavor, hook.name) == ("MLFLOW", "deploys")
        shown = page.get_by_test_id("new-webhook-secret").inner_text().strip()
        assert shown == hook.secret

        page.get_by_test_id("test-webhook").click()
        page.get_by_text("the receiver answered 200").wait_for()
        (received,) = receiver.wait_for(1)
    assert readme_function("verify_mlflow")(shown, received.body, received.headers)
    # Shown once: the page after the test send no longer has it.
    assert page.get_by_test_id("new-webhook-secret").count() == 0
    assert shown not in page.content()
