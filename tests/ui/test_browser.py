"""The main story in a real browser (Debian's Chromium, headless) against a live server.

Alice (CAN_EDIT) requests Production for version 2 with a comment; Bob
(CAN_MANAGE_PRODUCTION_VERSIONS) finds it under "Waiting for me" and approves with a comment;
version 2 is in Production, version 1 archived, and the timeline shows both comments. Carol
(CAN_READ) sees no approve button, and her forged POST is refused with nothing changed. Each
main page is photographed at 1280 and 390 px and checked for horizontal overflow.
"""

from __future__ import annotations

import re

import pytest
from django.db import connections

from registry import services
from registry.models import Activity, ModelVersion, ModelVersionManifest, TransitionRequest
from tests.conftest import PASSWORD
from tests.ui.browser import CHROMIUM, CHROMIUM_ARGS, needs_chromium, screenshot_each_width
from tests.ui.conftest import MODEL

playwright_sync = pytest.importorskip("playwright.sync_api")

pytestmark = [
    pytest.mark.django_db(transaction=True),
    # CI must run them (make test installs Chromium); elsewhere a missing browser skips them.
    needs_chromium,
]


@pytest.fixture
def browser(monkeypatch):
    # Playwright's sync API runs an event loop in this thread; the ORM calls of the test
    # itself are still synchronous and safe.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with playwright_sync.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
            # The test's own queries ran under Playwright's greenlet, with a connection of
            # their own: close it, or the test database cannot be dropped at the end.
            connections.close_all()


def _sign_in(browser, live_server, username: str):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{live_server.url}/models/")
    assert "/login/" in page.url
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r".*/models/$"))
    return page


def _version_url(live_server, number: int) -> str:
    return f"{live_server.url}/models/{MODEL}/versions/{number}/"


def _add_manifest(number: int) -> None:
    model_version = ModelVersion.objects.get(registered_model__name=MODEL, version=number)
    files = [
        {"path": "MLmodel", "size": 412, "sha256": "3f" * 32},
        {"path": "model.pkl", "size": 1_204_311, "sha256": "a9" * 32},
        {"path": "requirements.txt", "size": 58, "sha256": "0c" * 32},
    ]
    model_version.artifact_digest = "sha256:" + "7e" * 32
    model_version.save(update_fields=["artifact_digest"])
    ModelVersionManifest.objects.create(
        model_version=model_version,
        total_size=sum(item["size"] for item in files),
        file_count=len(files),
        files=files,
    )


def test_request_approve_story_in_the_browser(browser, live_server, story):
    _add_manifest(2)
    story.owner.is_superuser = True  # sees every section and the registry-wide hooks
    story.owner.save(update_fields=["is_superuser"])
    _webhook_with_deliveries(story.owner)

    # The sign-in page, as everyone sees it first.
    login = browser.new_context().new_page()
    login.goto(f"{live_server.url}/login/")
    screenshot_each_width(login, "login")

    # Alice asks for Production. The list shows each model's description and aliases too.
    services.registered_model_alias_set(
        actor=story.owner, name=MODEL, alias="champion", version="1"
    )
    alice = _sign_in(browser, live_server, "alice")
    screenshot_each_width(alice, "models")
    alice.get_by_role("link", name=MODEL).click()
    alice.get_by_role("link", name="Version 2").click()
    alice.get_by_text("Request a move", exact=True).click()  # the form is behind a button
    form = alice.get_by_test_id("transition-form")
    form.get_by_label("Target stage").select_option("Production")
    form.get_by_label("Comment").fill("Validation passed on the March data.")
    alice.get_by_role("button", name="Request transition").click()
    alice.get_by_text("Requested the move of version 2 to Production.").wait_for()
    assert alice.locator('[data-action="approve"]').count() == 0  # CAN_EDIT cannot decide

    # Bob finds it waiting for him and approves it.
    bob = _sign_in(browser, live_server, "bob")
    bob.get_by_role("link", name="Waiting for me").click()
    screenshot_each_width(bob, "waiting")
    bob.get_by_test_id("waiting-table").get_by_role("link", name="Version 2").click()
    request_box = bob.get_by_test_id("open-request")
    request_box.get_by_label("Comment on your decision").fill("Approved after the risk review.")
    assert request_box.get_by_label("Archive the versions now in that stage").is_checked()
    request_box.get_by_role("button", name="Approve").click()
    bob.get_by_text("Approved: version 2 is now in Production.").wait_for()

    # The version is in Production; the old one is archived; the trail tells why.
    assert bob.get_by_test_id("current-stage").inner_text().strip() == "Production"
    timeline = bob.get_by_test_id("timeline").inner_text()
    assert "Requested transition" in timeline
    assert "Validation passed on the March data." in timeline
    assert "Approved request" in timeline
    assert "Approved after the risk review." in timeline
    # The file's download link (the preview section names the file too).
    assert bob.get_by_role("link", name="MLmodel", exact=True).count() == 1
    screenshot_each_width(bob, "version")
    bob.goto(_version_url(live_server, 1))
    assert bob.get_by_test_id("current-stage").inner_text().strip() == "Archived"
    assert (
        "Archived when version 2 moved to Production."
        in bob.get_by_test_id("timeline").inner_text()
    )

    # The owner's view of the model: permissions, policies, hooks; and the webhooks pages.
    owner = _sign_in(browser, live_server, "olivia")
    owner.goto(f"{live_server.url}/models/{MODEL}/")
    owner.get_by_role("heading", name="Stage policies").wait_for()
    screenshot_each_width(owner, "model")
    owner.get_by_role("link", name="Webhooks", exact=True).click()
    screenshot_each_width(owner, "webhooks")
    owner.get_by_test_id("webhook-table").get_by_role("link").first.click()
    owner.get_by_test_id("delivery").first.wait_for()
    screenshot_each_width(owner, "webhook")
    owner.get_by_role("link", name="API tokens").click()
    owner.get_by_label("Token name").fill("deploy pipeline")
    owner.get_by_role("button", name="Create token").click()
    assert owner.get_by_test_id("new-token").inner_text().count("mrt_") == 1
    screenshot_each_width(owner, "tokens")


def test_read_only_user_sees_no_approve_button_and_a_forged_post_is_refused(
    browser, live_server, story
):
    request = services.transition_request_create(
        actor=story.alice, name=MODEL, version=2, stage="Production", comment="please"
    )
    before = Activity.objects.count()
    carol = _sign_in(browser, live_server, "carol")
    carol.goto(_version_url(live_server, 2))
    box = carol.get_by_test_id("open-request")
    assert "please" in box.inner_text()
    assert box.locator("button").count() == 0
    assert carol.get_by_role("button", name="Approve").count() == 0

    # A hand-made POST with a valid CSRF token, from her signed-in browser.
    token = carol.locator("input[name=csrfmiddlewaretoken]").first.get_attribute("value")
    response = carol.request.post(
        f"{_version_url(live_server, 2)}requests/{request.code}/approve",
        form={"csrfmiddlewaretoken": token, f"r-{request.code}-comment": "forged"},
        headers={"Referer": _version_url(live_server, 2)},
    )
    # Refused, and sent back to the version's page with the refusal (post/redirect/get).
    assert response.url == _version_url(live_server, 2)
    body = response.text()
    assert "User &#x27;carol&#x27; may not move versions from None to Production" in body
    assert "Traceback" not in body

    request.refresh_from_db()
    assert request.status == "OPEN"
    assert not request.approvals.exists()
    assert Activity.objects.count() == before
    stages = dict(
        ModelVersion.objects.filter(registered_model=story.model).values_list(
            "version", "current_stage"
        )
    )
    assert stages == {1: "Production", 2: "None"}
    assert TransitionRequest.objects.filter(status="OPEN").count() == 1


def _webhook_with_deliveries(owner) -> None:
    """A hook in test mode (the story's events send it nothing) with a delivery log to show."""
    from django.utils import timezone

    from webhooks.models import (
        WebhookDelivery,
        WebhookDeliveryAttempt,
        WebhookEvent,
    )
    from webhooks.services.management import webhook_create

    hook = webhook_create(
        actor=owner,
        flavor="DATABRICKS",
        events=["MODEL_VERSION_TRANSITIONED_STAGE"],
        url="https://deploy.example.com/hooks/registry",
        model_name=MODEL,
        description="Starts the deployment pipeline",
        status="TEST_MODE",
    )
    event = WebhookEvent.objects.create(
        event_type="MODEL_VERSION_TRANSITIONED_STAGE", model_name=MODEL, version="1", data={}
    )
    delivery = WebhookDelivery.objects.create(
        webhook=hook, event=event, body="{}", status="SUCCESS", attempt_count=2
    )
    now = timezone.now()
    WebhookDeliveryAttempt.objects.create(
        delivery=delivery, number=1, outcome="RETRY", response_status=503, duration_ms=41,
        error="HTTP 503", started_at=now,
    )  # fmt: skip
    WebhookDeliveryAttempt.objects.create(
        delivery=delivery, number=2, outcome="SUCCESS", response_status=200, duration_ms=37,
        started_at=now,
    )  # fmt: skip


def test_where_the_files_are_is_shown_before_anyone_decides(browser, live_server, story, settings):
    """A version the registry copied shows its files digest; one registered in reference mode
    says in its header, where an approver looks first, that its files were not copied, and why
    that matters; the model's table tells the kinds apart."""
    _add_manifest(2)
    settings.ARTIFACTS = {**settings.ARTIFACTS, "MODE": "reference"}
    long_source = "s3://training-artifacts/" + "/".join(["experiments-2026"] * 10) + "/model"
    services.model_version_create(actor=story.owner, name=MODEL, source=long_source)
    services.registered_model_alias_set(actor=story.owner, name=MODEL, alias="ref", version="3")
    services.model_version_create(actor=story.owner, name=MODEL, source=f"models:/{MODEL}@ref")
    pending = services.model_version_create(
        actor=story.owner, name=MODEL, source="mlflow-artifacts:/uploads/olivia/model"
    )
    ModelVersion.objects.filter(pk=pending.pk).update(status="PENDING_REGISTRATION")
    page = _sign_in(browser, live_server, "bob")

    page.goto(_version_url(live_server, 2))
    assert page.get_by_test_id("digest").inner_text() == "sha256:" + "7e" * 32
    assert page.get_by_test_id("not-copied").count() == 0
    screenshot_each_width(page, "version-copied")

    page.goto(_version_url(live_server, 3))
    assert page.get_by_test_id("not-copied").inner_text() == "Files not copied"
    assert "the registry cannot tell" in page.get_by_test_id("reference").inner_text()
    assert page.get_by_test_id("digest").count() == 0
    screenshot_each_width(page, "version-reference")

    # A copy of a reference names where the files are, since its source is another version.
    page.goto(_version_url(live_server, 4))
    assert long_source in page.get_by_test_id("reference").inner_text()

    page.goto(f"{live_server.url}/models/{MODEL}/")
    files = page.locator("[data-testid=version-table] td[data-label=Files]").all_inner_texts()
    assert files == ["copying…", "not copied", "not copied", "copied 7e7e7e7e7e7e", "—"]
    screenshot_each_width(page, "model-files-column")
