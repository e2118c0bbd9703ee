"""The webhooks pages (docs/ui.md, "Webhooks"): health from the tries (a hook whose tries all
fail is "Failing", never "Active" with no failures), repeated errors collapsed in the delivery
log, and create, edit, test and disable through the same services and rules as the API, the
secrets write-only."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.ui.conftest import MODEL
from tests.ui.test_query_counts import _client, _same_count
from tests.webhooks.conftest import run_receiver
from webhooks.models import (
    AttemptOutcome,
    DeliveryStatus,
    Webhook,
    WebhookDelivery,
    WebhookDeliveryAttempt,
    WebhookEvent,
)
from webhooks.services import management as webhook_services

pytestmark = pytest.mark.django_db

ERROR = "Connection refused by 10.0.0.9:443 after 3.0 s (the receiver is down or blocks us)"


def _hook(owner, url: str = "https://hooks.example.com/ci", **extra):
    return webhook_services.webhook_create(
        actor=owner,
        flavor="DATABRICKS",
        events=["MODEL_VERSION_CREATED"],
        url=url,
        model_name=MODEL,
        **extra,
    )


def _failing_delivery(hook, tries: int, *, status: str = DeliveryStatus.PENDING):
    """A delivery whose ``tries`` tries all failed the same way; still waiting to be retried."""
    now = timezone.now()
    event = WebhookEvent.objects.create(event_type="MODEL_VERSION_CREATED", model_name=MODEL)
    delivery = WebhookDelivery.objects.create(
        webhook=hook,
        event=event,
        body="{}",
        status=status,
        attempt_count=tries,
        last_error=ERROR,
        next_attempt_at=now + timedelta(minutes=5),
    )
    for number in range(1, tries + 1):
        WebhookDeliveryAttempt.objects.create(
            delivery=delivery,
            number=number,
            outcome=AttemptOutcome.RETRY,
            error=ERROR,
            started_at=now - timedelta(seconds=60 - number),
        )
    return delivery


def _text(response) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", response.content.decode()).split())


def test_a_hook_failing_every_try_is_failing_with_its_count_and_next_try(story):
    hook = _hook(story.owner)
    _failing_delivery(hook, 3)
    _failing_delivery(hook, 2)
    owner = _client(story.owner)

    listed = _text(owner.get(reverse("ui:webhook-list")))
    assert "Failing 5 failed tries in a row next try" in listed
    assert "Active" not in listed

    page = owner.get(reverse("ui:webhook-detail", args=[hook.code]))
    text = _text(page)
    assert "Failures in a row 5 tries" in text
    assert "Failures in a row 0" not in text
    assert "2 waiting" in text
    # The same long error is written once: the second delivery and repeated tries say so.
    html = page.content.decode()
    assert html.count(ERROR[:60]) == 2  # the last try (Health), the first delivery's log
    assert 'data-testid="same-error"' in html
    assert "1–3" in text
    assert "(3×)" in text


def test_a_success_after_failures_makes_the_hook_healthy_again(story):
    hook = _hook(story.owner)
    delivery = _failing_delivery(hook, 2)
    WebhookDeliveryAttempt.objects.create(
        delivery=delivery, number=3, outcome=AttemptOutcome.SUCCESS, response_status=200
    )
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.SUCCESS)
    text = _text(_client(story.owner).get(reverse("ui:webhook-detail", args=[hook.code])))
    assert "Healthy" in text
    assert "Failures in a row 0 tries" in text
    assert "none waiting" in text


def test_a_disabled_hook_says_so_whatever_its_tries(story):
    hook = _hook(story.owner)
    webhook_services.webhook_update(actor=story.owner, webhook=hook, status="DISABLED")
    listed = _text(_client(story.owner).get(reverse("ui:webhook-list")))
    assert "Disabled" in listed
    assert "Healthy" not in listed


def test_create_keeps_the_secret_write_only(story):
    owner = _client(story.owner)
    response = owner.post(
        reverse("ui:webhook-create"),
        {
            "w-model_name": MODEL,
            "w-url": "https://hooks.example.com/deploy",
            "w-events": ["MODEL_VERSION_CREATED", "COMMENT_CREATED"],
            "w-secret": "s3cr3t-value",
            "w-authorization": "Bearer tok-123",
            "w-enable_ssl_verification": "on",
            "w-status": "ACTIVE",
        },
        follow=True,
    )
    hook = Webhook.objects.get()
    assert response.redirect_chain == [(reverse("ui:webhook-detail", args=[hook.code]), 302)]
    assert hook.secret == "s3cr3t-value"
    assert hook.authorization == "Bearer tok-123"
    assert sorted(sub.event_type for sub in hook.subscriptions.all()) == [
        "COMMENT_CREATED",
        "MODEL_VERSION_CREATED",
    ]
    html = response.content.decode()
    assert "s3cr3t-value" not in html
    assert "tok-123" not in html
    assert "Webhook created" in html


def test_create_refused_by_the_services_rule_keeps_the_text_but_not_the_secret(story):
    alice = _client(story.alice)  # CAN_EDIT: may not manage the model's hooks
    response = alice.post(
        reverse("ui:webhook-create"),
        {
            "w-model_name": MODEL,
            "w-url": "https://hooks.example.com/mine",
            "w-events": ["MODEL_VERSION_CREATED"],
            "w-secret": "s3cr3t-value",
            "w-status": "ACTIVE",
        },
        follow=True,
    )
    assert response.redirect_chain == [(reverse("ui:webhook-new"), 303)]
    html = response.content.decode()
    assert "CAN_MANAGE" in html or "manage webhooks" in html
    assert "https://hooks.example.com/mine" in html
    assert "s3cr3t-value" not in html
    assert not Webhook.objects.exists()
    # A registry-wide hook (no model) needs a registry admin, as in the API.
    owner = _client(story.owner)
    owner.post(
        reverse("ui:webhook-create"),
        {"w-url": "https://hooks.example.com/all", "w-events": ["REGISTERED_MODEL_CREATED"]},
    )
    assert not Webhook.objects.exists()


def test_a_new_url_drops_the_credentials_unless_typed_again(story):
    hook = _hook(story.owner, secret="old-secret", authorization="Bearer old")
    owner = _client(story.owner)
    page = owner.get(reverse("ui:webhook-detail", args=[hook.code])).content.decode()
    assert "removes the signing secret and the authorization header" in page
    assert "old-secret" not in page
    edit = reverse("ui:webhook-edit", args=[hook.code])
    form = {
        "e-url": hook.url,
        "e-events": ["MODEL_VERSION_CREATED"],
        "e-enable_ssl_verification": "on",
        "e-status": "ACTIVE",
        "e-description": "CI deploys",
    }

    owner.post(edit, form)  # the same URL, secrets left empty: kept
    hook.refresh_from_db()
    assert (hook.secret, hook.authorization, hook.description) == (
        "old-secret",
        "Bearer old",
        "CI deploys",
    )

    response = owner.post(edit, {**form, "e-url": "https://other.example.com/x"}, follow=True)
    hook.refresh_from_db()
    assert (hook.url, hook.secret, hook.authorization) == ("https://other.example.com/x", "", "")
    assert "Its secret and authorization were removed." in response.content.decode()

    owner.post(edit, {**form, "e-url": "https://other.example.com/x", "e-secret": "new"})
    hook.refresh_from_db()
    assert hook.secret == "new"


def test_test_sends_to_the_real_receiver_and_disable_stops_the_hook(story):
    owner = _client(story.owner)
    with run_receiver() as receiver:
        hook = _hook(story.owner, url=receiver.url)
        response = owner.post(reverse("ui:webhook-test", args=[hook.code]), follow=True)
        assert len(receiver.wait_for(1)) == 1
    assert "Test MODEL_VERSION_CREATED sent: the receiver answered 200." in _text(response)
    assert WebhookDelivery.objects.get(webhook=hook).is_test

    carol = Client()
    carol.force_login(story.carol)
    carol.post(reverse("ui:webhook-status", args=[hook.code]), {"status": "DISABLED"})
    hook.refresh_from_db()
    assert hook.status == "ACTIVE"

    owner.post(reverse("ui:webhook-status", args=[hook.code]), {"status": "DISABLED"})
    hook.refresh_from_db()
    assert hook.status == "DISABLED"
    owner.post(reverse("ui:webhook-status", args=[hook.code]), {"status": "ACTIVE"})
    hook.refresh_from_db()
    assert hook.status == "ACTIVE"


def test_the_pages_cost_the_same_queries_however_many_hooks_and_tries(story):
    def add_failing_hooks(count: int) -> None:
        for number in range(count):
            _failing_delivery(_hook(story.owner, url=f"https://h.example.com/{number}"), 3)

    _same_count(_client(story.owner), reverse("ui:webhook-list"), add_failing_hooks)

    hook = _hook(story.owner)

    def add_deliveries(count: int) -> None:
        for _ in range(count):
            _failing_delivery(hook, 4)

    _same_count(
        _client(story.owner), reverse("ui:webhook-detail", args=[hook.code]), add_deliveries
    )
    _same_count(_client(story.owner), reverse("ui:webhook-new"), lambda count: None)


def test_a_refused_edit_comes_back_open_with_the_typed_url_and_no_secret(story):
    hook = _hook(story.owner, secret="old-secret")
    owner = _client(story.owner)
    response = owner.post(
        reverse("ui:webhook-edit", args=[hook.code]),
        {
            "e-url": "ftp://files.example.com/drop",
            "e-events": ["MODEL_VERSION_CREATED"],
            "e-secret": "typed-secret",
            "e-status": "ACTIVE",
        },
        follow=True,
    )
    page = reverse("ui:webhook-detail", args=[hook.code])
    assert response.redirect_chain == [(f"{page}#edit", 303)]
    html = response.content.decode()
    assert "Invalid webhook URL scheme" in html
    assert 'value="ftp://files.example.com/drop"' in html
    assert '<details class="edit-hook" open>' in html
    assert "typed-secret" not in html
    hook.refresh_from_db()
    assert (hook.url, hook.secret) == ("https://hooks.example.com/ci", "old-secret")


@pytest.fixture
def admin_client(django_user_model) -> Client:
    admin = django_user_model.objects.create_superuser("root", password="root-password-1")
    client = Client()
    client.force_login(admin)
    return client


def _mlflow_form(**changes):
    return {
        "w-flavor": "MLFLOW",
        "w-name": "deploys",
        "w-url": "https://hooks.example.com/mlflow",
        "w-mlflow_events": ["MODEL_VERSION.CREATED", "MODEL_VERSION_TAG.SET"],
        "w-generate_signing_key": "on",
        "w-enable_ssl_verification": "on",
        "w-status": "ACTIVE",
        **changes,
    }


def test_the_new_page_offers_both_flavours_with_their_own_events(story):
    html = _client(story.owner).get(reverse("ui:webhook-new")).content.decode()
    assert '<option value="DATABRICKS" selected>' in html
    assert '<option value="MLFLOW">' in html
    databricks = html[html.index('data-testid="databricks-events"') :]
    databricks = databricks[: databricks.index("</fieldset>")]
    mlflow = html[html.index('data-testid="mlflow-events"') :]
    mlflow = mlflow[: mlflow.index("</fieldset>")]
    assert 'value="TRANSITION_REQUEST_CREATED"' in databricks
    assert "model_version_tag.deleted" in mlflow
    assert "TRANSITION_REQUEST" not in mlflow  # MLflow has no requests
    assert "prompt" not in mlflow  # nor does this registry have prompts


def test_an_mlflow_hook_from_the_ui_signs_with_the_secret_shown_once(story, admin_client):
    """docs/ui.md, "Webhooks": an MLflow-style hook, its events as MLflow names them, and the
    secret the registry generated shown on the next page only; a test send to a real receiver
    is signed as MLflow signs, with that secret (the check of docs/webhooks.md)."""
    from tests.webhooks.snippets import readme_function

    with run_receiver() as receiver:
        response = admin_client.post(
            reverse("ui:webhook-create"), _mlflow_form(**{"w-url": receiver.url}), follow=True
        )
        hook = Webhook.objects.get()
        assert (hook.flavor, hook.name, hook.registered_model) == ("MLFLOW", "deploys", None)
        assert sorted(sub.event_type for sub in hook.subscriptions.all()) == [
            "MODEL_VERSION_CREATED",
            "MODEL_VERSION_TAG_SET",
        ]
        page = reverse("ui:webhook-detail", args=[hook.code])
        assert response.redirect_chain == [(page, 302)]
        assert response["Cache-Control"] == "no-store"
        shown = re.search(r'data-testid="new-webhook-secret">([^<]+)<', response.content.decode())
        assert shown is not None
        assert shown.group(1) == hook.secret
        assert len(hook.secret) >= 32
        again = admin_client.get(page)
        assert hook.secret not in again.content.decode()
        assert "no-store" not in again.get("Cache-Control", "")

        admin_client.post(reverse("ui:webhook-test", args=[hook.code]))
        (received,) = receiver.wait_for(1)
    verify_mlflow = readme_function("verify_mlflow")
    assert verify_mlflow(shown.group(1), received.body, received.headers)


def test_a_typed_secret_is_used_and_never_shown(story, admin_client):
    response = admin_client.post(
        reverse("ui:webhook-create"),
        _mlflow_form(**{"w-secret": "typed-s3cret"}),
        follow=True,
    )
    assert Webhook.objects.get().secret == "typed-s3cret"
    assert "typed-s3cret" not in response.content.decode()
    assert 'data-testid="new-webhook-secret"' not in response.content.decode()


def test_no_secret_unless_asked(story, admin_client):
    form = _mlflow_form()
    del form["w-generate_signing_key"]
    admin_client.post(reverse("ui:webhook-create"), form)
    assert Webhook.objects.get().secret == ""


def test_mlflow_hooks_follow_the_apis_rules(story, admin_client):
    """The same service as MLflow's API: a hook for all models needs a registry admin, MLflow
    hooks have no test mode and need events of their own vocabulary; and they are for all
    models, which the form says rather than dropping a typed model."""
    url = reverse("ui:webhook-create")
    refusals = [
        (_client(story.owner), _mlflow_form(), "admin"),
        (admin_client, _mlflow_form(**{"w-model_name": MODEL}), "MLflow-style hooks are for all"),
        (admin_client, _mlflow_form(**{"w-status": "TEST_MODE"}), "Invalid webhook status"),
        (
            admin_client,
            _mlflow_form(**{"w-mlflow_events": [], "w-events": ["MODEL_VERSION_CREATED"]}),
            "events cannot be empty",
        ),
        (admin_client, _mlflow_form(**{"w-name": "not a name!"}), "Invalid webhook name"),
    ]
    for client, form, message in refusals:
        response = client.post(url, form, follow=True)
        assert response.redirect_chain == [(reverse("ui:webhook-new"), 303)], message
        html = response.content.decode()
        assert message in html, html[html.find('class="msg') :][:300]
        # The choice of flavour and the name are kept for the redisplay.
        assert '<option value="MLFLOW" selected>' in html
    assert not Webhook.objects.exists()


def test_an_mlflow_hooks_name_and_events_are_edited_in_the_ui(story, admin_client):
    hook = webhook_services.webhook_create(
        actor=None,
        flavor="MLFLOW",
        name="deploys",
        events=[{"entity": "model_version", "action": "created"}],
        url="https://hooks.example.com/mlflow",
        secret="kept",
    )
    page = admin_client.get(reverse("ui:webhook-detail", args=[hook.code])).content.decode()
    assert 'value="MODEL_VERSION.CREATED"' in page
    assert re.search(r'value="MODEL_VERSION\.CREATED"[^>]*checked', page)
    assert 'value="deploys"' in page
    admin_client.post(
        reverse("ui:webhook-edit", args=[hook.code]),
        {
            "e-url": hook.url,
            "e-name": "deploys-v2",
            "e-mlflow_events": ["MODEL_VERSION_ALIAS.CREATED", "MODEL_VERSION_ALIAS.DELETED"],
            "e-enable_ssl_verification": "on",
            "e-status": "ACTIVE",
        },
    )
    hook.refresh_from_db()
    assert (hook.name, hook.secret) == ("deploys-v2", "kept")
    assert sorted(sub.event_type for sub in hook.subscriptions.all()) == [
        "MODEL_VERSION_ALIAS_CREATED",
        "MODEL_VERSION_ALIAS_DELETED",
    ]
    response = admin_client.post(
        reverse("ui:webhook-edit", args=[hook.code]),
        {"e-url": hook.url, "e-name": "deploys-v2", "e-status": "ACTIVE"},
        follow=True,
    )
    assert "events cannot be empty" in response.content.decode()
    assert hook.subscriptions.count() == 2


def test_a_databricks_hook_can_get_a_generated_secret_too(story):
    response = _client(story.owner).post(
        reverse("ui:webhook-create"),
        {
            "w-flavor": "DATABRICKS",
            "w-model_name": MODEL,
            "w-url": "https://hooks.example.com/d",
            "w-events": ["MODEL_VERSION_CREATED"],
            "w-generate_signing_key": "on",
            "w-status": "ACTIVE",
        },
        follow=True,
    )
    hook = Webhook.objects.get()
    assert hook.flavor == "DATABRICKS"
    assert f'data-testid="new-webhook-secret">{hook.secret}<' in response.content.decode()
