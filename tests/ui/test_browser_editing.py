"""Editing by permission level in a real browser (Debian's Chromium, headless).

Alice (CAN_EDIT) edits the model's description and tags, a version's description and tags, and
points an alias at a version and deletes it; she sees no rename, delete, permissions or policy
forms. Olivia (CAN_MANAGE) lowers Bob's grant, which asks first, and removes Carol's; the
Production policy form opens with the policy in force (two approvals, no self-approval, no
direct moves, the required tag, the expiry). Each page is photographed at 1280 and 390 px and
checked for overflow and for words broken inside table cells.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from accounts.models import RegisteredModelGrant
from registry import services
from registry.models import ModelVersion, RegisteredModel, RegisteredModelAlias
from tests.conftest import PASSWORD
from tests.ui.browser import needs_chromium, screenshot_each_width, sign_in
from tests.ui.conftest import MODEL

pytest.importorskip("playwright.sync_api")

pytestmark = [
    pytest.mark.django_db(transaction=True),
    needs_chromium,
]

MODEL_PATH = f"/models/{MODEL}/"


def _accept_confirmations(page) -> list[str]:
    asked: list[str] = []

    def accept(dialog) -> None:
        asked.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    return asked


def test_an_editor_edits_description_tags_and_an_alias(browser, live_server, story):
    alice = sign_in(browser, live_server.url, "alice", PASSWORD, at=MODEL_PATH)
    asked = _accept_confirmations(alice)
    # CAN_EDIT: no forms of CAN_MANAGE.
    for absent in ("rename-form", "delete-model-form", "grant-form", "grant-table"):
        assert alice.get_by_test_id(absent).count() == 0, absent

    edit = alice.get_by_test_id("model-edit")
    edit.get_by_text("Edit description and tags").click()
    edit.get_by_label("Description").fill("Scores **card** payments, v2 features.")
    edit.get_by_role("button", name="Save description").click()
    alice.get_by_text("Description saved.").wait_for()
    assert alice.get_by_test_id("model-description").locator("strong").inner_text() == "card"

    alice.get_by_test_id("model-edit").get_by_text("Edit description and tags").click()
    edit = alice.get_by_test_id("model-edit")
    edit.get_by_label("Key").fill("domain")
    edit.get_by_label("Value").fill("payments")
    edit.get_by_role("button", name="Set tag").click()
    alice.get_by_text("Tag domain set.").wait_for()
    alice.get_by_role("button", name="Delete the tag team").click()
    alice.get_by_text("Tag team deleted.").wait_for()
    assert asked == ["Delete the tag team?"]
    assert alice.get_by_test_id("model-tags").inner_text().split() == ["domain=payments", "×"]
    registered_model = RegisteredModel.objects.get(name=MODEL)
    assert registered_model.description == "Scores **card** payments, v2 features."
    assert {t.key: t.value for t in registered_model.tags.all()} == {"domain": "payments"}

    # An alias: set directly (no policy protects it), shown with its version's stage, deleted.
    form = alice.get_by_test_id("alias-form")
    form.get_by_label("Alias").fill("challenger")
    form.get_by_label("Version").fill("2")
    form.get_by_role("button", name="Move now").click()
    alice.get_by_text("@challenger now names version 2.").wait_for()
    row = alice.locator('tr[data-alias="challenger"]')
    assert "None" in row.inner_text()  # version 2's stage
    screenshot_each_width(alice, "model-editor")
    row.get_by_role("button", name="Delete").click()
    alice.get_by_text("Deleted the alias @challenger.").wait_for()
    assert not RegisteredModelAlias.objects.filter(alias="challenger").exists()

    # The version: its description and a tag.
    alice.goto(f"{live_server.url}{MODEL_PATH}versions/2/")
    alice.get_by_test_id("version-edit").get_by_text("Edit description and tags").click()
    edit = alice.get_by_test_id("version-edit")
    edit.get_by_label("Description").fill("Trained on [March](https://example.com/march) data.")
    edit.get_by_role("button", name="Save description").click()
    alice.get_by_text("Description saved.").wait_for()
    link = alice.get_by_test_id("version-description").get_by_role("link", name="March")
    assert link.get_attribute("href") == "https://example.com/march"
    alice.get_by_test_id("version-edit").get_by_text("Edit description and tags").click()
    edit = alice.get_by_test_id("version-edit")
    edit.get_by_label("Key").fill("dataset")
    edit.get_by_label("Value").fill("2026-03")
    edit.get_by_role("button", name="Set tag").click()
    alice.get_by_text("Tag dataset set.").wait_for()
    version = ModelVersion.objects.get(registered_model__name=MODEL, version=2)
    assert {t.key: t.value for t in version.tags.all()} == {"dataset": "2026-03"}
    assert alice.get_by_test_id("delete-version-form").count() == 0  # CAN_MANAGE only
    alice.get_by_test_id("version-edit").get_by_text("Edit description and tags").click()
    screenshot_each_width(alice, "version-editor")


def test_a_manager_changes_and_removes_grants_and_sees_the_current_policy(
    browser, live_server, story
):
    services.stage_policy_set(
        actor=story.owner,
        name=MODEL,
        stage="Production",
        required_approvals=2,
        allow_self_approval=False,
        allow_direct_transition=False,
        required_version_tags={"validation_status": "passed"},
        request_ttl_seconds=int(timedelta(hours=48).total_seconds()),
    )
    olivia = sign_in(browser, live_server.url, "olivia", PASSWORD, at=MODEL_PATH)
    asked = _accept_confirmations(olivia)

    # The policy form opens with the policy in force, not the defaults.
    olivia.get_by_text("Edit the policy for Production").click()
    form = olivia.get_by_test_id("policy-form-Production")
    assert form.get_by_label("Required approvals").input_value() == "2"
    assert not form.get_by_label("Requester may approve").is_checked()
    assert not form.get_by_label("Direct transitions allowed").is_checked()
    assert form.get_by_label("Required version tags").input_value() == "validation_status=passed"
    assert form.get_by_label("Requests expire after (hours)").input_value() == "48"
    screenshot_each_width(olivia, "policy-form-current")

    # Readable levels; lowering Bob's grant asks first.
    grants = olivia.get_by_test_id("grant-table")
    bob_row = grants.locator('tr[data-principal="bob"]')
    assert bob_row.get_by_test_id("grant-level").inner_text() == "Can manage production versions"
    bob_row.get_by_label("Permission of bob").select_option("CAN_READ")
    bob_row.get_by_role("button", name="Change").click()
    olivia.get_by_text(
        "This lowers bob from “Can manage production versions” to “Can read”."
    ).wait_for()
    assert (
        RegisteredModelGrant.objects.get(user=story.bob).level == "CAN_MANAGE_PRODUCTION_VERSIONS"
    )
    screenshot_each_width(olivia, "grant-downgrade-confirm")
    form = olivia.get_by_test_id("grant-form")
    assert form.get_by_label("User or group").input_value() == "bob"  # kept for the confirmation
    form.get_by_label("Yes, lower this grant").check()
    form.get_by_role("button", name="Grant").click()
    olivia.get_by_text("bob: “Can manage production versions” is now “Can read”.").wait_for()
    assert RegisteredModelGrant.objects.get(user=story.bob).level == "CAN_READ"
    bob_row = olivia.get_by_test_id("grant-table").locator('tr[data-principal="bob"]')
    assert bob_row.get_by_test_id("grant-level").inner_text() == "Can read"

    # Removing Carol's grant, after a confirmation.
    olivia.get_by_test_id("grant-table").locator('tr[data-principal="carol"]').get_by_role(
        "button", name="Remove"
    ).click()
    olivia.get_by_text("Removed the grant of carol on this model.").wait_for()
    assert asked == [
        f"Remove the grant of carol on {MODEL}? They keep only the registry-wide level."
    ]
    assert not RegisteredModelGrant.objects.filter(user=story.carol).exists()
    assert olivia.locator('tr[data-principal="carol"]').count() == 0

    # Version 1 is in Production: its deletion is refused before the click, with the reason.
    olivia.goto(f"{live_server.url}{MODEL_PATH}versions/1/")
    assert "it is in Production" in olivia.get_by_test_id("delete-guard").inner_text()
    assert olivia.get_by_test_id("delete-version-form").count() == 0
    olivia.goto(f"{live_server.url}{MODEL_PATH}")
    assert "version 1 (it is in Production)" in olivia.get_by_test_id("delete-guard").inner_text()
    screenshot_each_width(olivia, "model-manager")


def test_crowded_tables_keep_their_words_whole(browser, live_server, story):
    """Waiting for me, the webhooks list and a delivery log with what makes their columns
    compete for room: the policy's terms in "Standing", long comments, several subscriptions
    and a long error. No header or cell word may break ("Requeste d by", "Versio n 3")."""
    from django.utils import timezone

    from webhooks.models import WebhookDelivery, WebhookDeliveryAttempt, WebhookEvent
    from webhooks.services.management import webhook_create

    story.owner.is_superuser = True
    story.owner.save(update_fields=["is_superuser"])
    services.stage_policy_set(
        actor=story.owner,
        name=MODEL,
        stage="Production",
        required_approvals=2,
        allow_self_approval=False,
        required_version_tags={"validation_status": "passed", "bias_review": "approved"},
    )
    services.model_version_create(actor=story.owner, name=MODEL, source="s3://models/fraud/3")
    long_comment = (
        "Validation passed on the March and April holdout sets; the calibration drift is "
        "within the agreed bounds and the shadow deployment ran for two weeks without alerts."
    )
    for number in (2, 3):
        services.transition_request_create(
            actor=story.alice, name=MODEL, version=number, stage="Production", comment=long_comment
        )
    services.alias_request_create(
        actor=story.alice, name=MODEL, alias="champion", version=2, comment=long_comment
    )
    long_name = "customer_lifetime_value_forecaster_with_seasonal_features.v2"
    services.registered_model_create(actor=story.owner, name=long_name)
    RegisteredModelGrant.objects.create(
        registered_model=RegisteredModel.objects.get(name=long_name),
        user=story.bob,
        level="CAN_MANAGE_PRODUCTION_VERSIONS",
    )
    services.model_version_create(actor=story.owner, name=long_name, source="s3://models/clv/1")
    services.transition_request_create(
        actor=story.alice, name=long_name, version=1, stage="Staging", comment=long_comment
    )
    hook = webhook_create(
        actor=story.owner,
        flavor="DATABRICKS",
        events=[
            "MODEL_VERSION_TRANSITIONED_STAGE",
            "TRANSITION_REQUEST_CREATED",
            "MODEL_VERSION_CREATED",
            "COMMENT_CREATED",
        ],
        url="https://deployment-orchestrator.internal.example.com/hooks/model-registry/events",
        model_name=MODEL,
        description="Starts the deployment pipeline",
        status="TEST_MODE",
    )
    event = WebhookEvent.objects.create(
        event_type="MODEL_VERSION_TRANSITIONED_STAGE", model_name=MODEL, version="1", data={}
    )
    delivery = WebhookDelivery.objects.create(
        webhook=hook, event=event, body="{}", status="FAILED", attempt_count=1
    )
    WebhookDeliveryAttempt.objects.create(
        delivery=delivery,
        number=1,
        outcome="FAILED",
        response_status=502,
        duration_ms=30012,
        error="HTTPSConnectionPool(host='deployment-orchestrator.internal.example.com', "
        "port=443): Read timed out. (read timeout=30) while waiting for the upstream gateway",
        started_at=timezone.now(),
    )

    bob = sign_in(browser, live_server.url, "bob", PASSWORD, at="/waiting/")
    screenshot_each_width(bob, "waiting-crowded")
    olivia = sign_in(browser, live_server.url, "olivia", PASSWORD, at="/webhooks/")
    screenshot_each_width(olivia, "webhooks-crowded")
    olivia.goto(f"{live_server.url}/webhooks/{hook.code}/")
    screenshot_each_width(olivia, "delivery-log-crowded")
