"""Hook settings that must not outlive their context or break later, through the APIs and the
real receivers:

- credentials belong to a receiver: changing a hook's URL drops its secret and authorization
  unless the same request sets them again;
- a payload template is refused at save when it cannot render to JSON or has too many
  placeholders, and a body over ``WEBHOOKS_MAX_BODY_BYTES`` is never sent: it is rendered by the
  worker, not the request that made the event, and its delivery ends ``FAILED`` with the reason;
- an authorization value that cannot be an HTTP header value is refused at save, and one that
  slipped past (stored before the rule) fails its delivery instead of the request.
"""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.models import PermissionLevel, RegisteredModelGrant
from registry import services as registry_services
from tests.conftest import basic_auth
from tests.webhooks.conftest import run_receiver, wait_until
from webhooks.models import (
    AttemptOutcome,
    DeliveryStatus,
    Webhook,
    WebhookDelivery,
    WebhookStatus,
)
from webhooks.payloads import TEMPLATE_MAX_PLACEHOLDERS
from webhooks.services.delivery import webhook_delivery_send
from webhooks.services.sweep import webhook_deliveries_sweep

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_webhooks")]

MLFLOW = "/api/2.0/mlflow/"
DBX = MLFLOW + "registry-webhooks/"
SECRET = "owner-signing-secret"
CI_TOKEN = "Bearer ci-token-of-the-owner"


def _client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=basic_auth(user.username))
    return client


@pytest.fixture
def model(admin):
    return registry_services.registered_model_create(actor=admin, name="m")


@pytest.fixture
def owner(user, model):
    RegisteredModelGrant.objects.create(
        registered_model=model, user=user, level=PermissionLevel.CAN_MANAGE
    )
    return user


@pytest.fixture
def co_manager(django_user_model, model):
    from tests.conftest import PASSWORD

    mallory = django_user_model.objects.create_user(username="mallory", password=PASSWORD)
    RegisteredModelGrant.objects.create(
        registered_model=model, user=mallory, level=PermissionLevel.CAN_MANAGE
    )
    return mallory


def _create_dbx(client: APIClient, url: str, **fields) -> dict:
    body = {
        "model_name": "m",
        "events": ["MODEL_VERSION_TAG_SET"],
        "http_url_spec": {"url": url, "secret": SECRET, "authorization": CI_TOKEN},
        **fields,
    }
    response = client.post(DBX + "create", body, format="json")
    assert response.status_code == 200, response.content
    return response.json()["webhook"]


def _row(hook_id: str) -> dict:
    """Everything stored about a hook (secrets decrypted), to show that a refusal changed
    nothing."""
    hook = Webhook.objects.get(code=hook_id)
    return {
        "url": hook.url,
        "secret": hook.secret,
        "authorization": hook.authorization,
        "payload_template": hook.payload_template,
        "status": hook.status,
        "description": hook.description,
        "updated_at": hook.updated_at,
        "events": sorted(hook.subscriptions.values_list("event_type", flat=True)),
    }


def _refused(response, *words: str) -> None:
    assert response.status_code == 400, response.content
    error = response.json()
    assert error["error_code"] == "INVALID_PARAMETER_VALUE"
    for word in words:
        assert word in error["message"], error["message"]


def _set_tag(client: APIClient, value: str = "v"):
    return client.post(
        MLFLOW + "model-versions/set-tag",
        {"name": "m", "version": "1", "key": "k", "value": value},
        format="json",
    )


# --- A URL change drops the credentials --------------------------------------------------------


def test_a_co_manager_who_changes_only_the_url_gets_no_credentials(
    owner, co_manager, receiver, admin
):
    ci = receiver
    owner_api, mallory_api = _client(owner), _client(co_manager)
    created = _create_dbx(owner_api, ci.url)
    assert created["http_url_spec"]["has_secret"] is True
    assert created["http_url_spec"]["has_authorization"] is True

    with run_receiver() as theirs:
        updated = mallory_api.patch(
            DBX + "update",
            {"id": created["id"], "http_url_spec": {"url": theirs.url}},
            format="json",
        )
        assert updated.status_code == 200, updated.content
        # The answer says what happened to them.
        spec = updated.json()["webhook"]["http_url_spec"]
        assert (spec["url"], spec["has_secret"], spec["has_authorization"]) == (
            theirs.url,
            False,
            False,
        )
        stored = _row(created["id"])
        assert (stored["url"], stored["secret"], stored["authorization"]) == (theirs.url, "", "")

        tested = mallory_api.post(DBX + "test", {"id": created["id"]}, format="json")
        assert tested.status_code == 200, tested.content
        (request,) = theirs.received
        assert "Authorization" not in request.headers
        assert "X-Databricks-Signature" not in request.headers
        assert CI_TOKEN.split()[1] not in json.dumps(request.headers)
    assert ci.received == []

    # The owner sees it too.
    listed = owner_api.get(DBX + "list", {"model_name": "m"}).json()["webhooks"]
    assert [(h["id"], h["http_url_spec"]["has_secret"]) for h in listed] == [(created["id"], False)]
    assert listed[0]["http_url_spec"]["has_authorization"] is False
    page = Client()
    page.force_login(owner)
    detail = page.get(reverse("ui:webhook-detail", args=[created["id"]])).content.decode()
    assert "<dt>Signing secret</dt><dd>none</dd>" in detail
    assert "<dt>Authorization header</dt><dd>none</dd>" in detail


def test_turning_certificate_checks_off_drops_the_credentials(owner, co_manager, receiver):
    """Without certificate checks, anyone between the registry and the receiver reads the
    token: a co-manager turning them off must not keep sending the owner's credentials."""
    created = _create_dbx(_client(owner), receiver.url)
    response = _client(co_manager).patch(
        DBX + "update",
        {
            "id": created["id"],
            "http_url_spec": {"url": receiver.url, "enable_ssl_verification": False},
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    spec = response.json()["webhook"]["http_url_spec"]
    assert (spec["has_secret"], spec["has_authorization"]) == (False, False)
    stored = _row(created["id"])
    assert (stored["url"], stored["secret"], stored["authorization"]) == (receiver.url, "", "")


def test_credentials_stay_when_the_url_stays_or_are_set_again_with_it(owner, receiver):
    owner_api = _client(owner)
    created = _create_dbx(owner_api, receiver.url)

    # Other fields, or the same URL again: the credentials stay.
    for change in (
        {"description": "deploys"},
        {"http_url_spec": {"url": receiver.url, "enable_ssl_verification": True}},
    ):
        response = owner_api.patch(DBX + "update", {"id": created["id"], **change}, format="json")
        assert response.status_code == 200, response.content
        assert response.json()["webhook"]["http_url_spec"]["has_secret"] is True
        stored = _row(created["id"])
        assert (stored["secret"], stored["authorization"]) == (SECRET, CI_TOKEN)

    # A new URL with credentials of its own: those are kept.
    new_url = receiver.url + "/v2"
    response = owner_api.patch(
        DBX + "update",
        {
            "id": created["id"],
            "http_url_spec": {"url": new_url, "secret": "new-secret", "authorization": "Bearer n"},
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    stored = _row(created["id"])
    assert (stored["url"], stored["secret"], stored["authorization"]) == (
        new_url,
        "new-secret",
        "Bearer n",
    )
    assert owner_api.post(DBX + "test", {"id": created["id"]}, format="json").status_code == 200
    (request,) = receiver.received
    assert request.headers["Authorization"] == "Bearer n"


def test_an_mlflow_hook_loses_its_secret_with_its_url(admin, django_user_model, receiver):
    from tests.conftest import PASSWORD

    other_admin = django_user_model.objects.create_superuser(username="ops", password=PASSWORD)
    created = _client(admin).post(
        MLFLOW + "webhooks",
        {
            "name": "deploys",
            "url": receiver.url,
            "events": [{"entity": "model_version", "action": "created"}],
            "secret": SECRET,
        },
        format="json",
    )
    assert created.status_code == 200, created.content
    hook = created.json()["webhook"]
    assert hook["has_secret"] is True

    with run_receiver() as theirs:
        updated = _client(other_admin).patch(
            MLFLOW + f"webhooks/{hook['webhook_id']}", {"url": theirs.url}, format="json"
        )
        assert updated.status_code == 200, updated.content
        assert updated.json()["webhook"]["has_secret"] is False
        assert Webhook.objects.get(code=hook["webhook_id"]).secret == ""
        tested = _client(other_admin).post(MLFLOW + f"webhooks/{hook['webhook_id']}/test")
        assert tested.json()["result"]["success"] is True
        (request,) = theirs.received
        assert "X-MLflow-Signature" not in request.headers
    assert receiver.received == []


# --- Payload templates: placeholders, size, shape ----------------------------------------------


def test_a_template_with_too_many_placeholders_is_refused(owner, receiver):
    owner_api = _client(owner)
    many = json.dumps({"d": " ".join(["${model_name}"] * (TEMPLATE_MAX_PLACEHOLDERS + 1))})

    refused = owner_api.post(
        DBX + "create",
        {
            "model_name": "m",
            "events": ["MODEL_VERSION_TAG_SET"],
            "http_url_spec": {"url": receiver.url},
            "payload_template": many,
        },
        format="json",
    )
    _refused(refused, str(TEMPLATE_MAX_PLACEHOLDERS), "placeholders")
    assert Webhook.objects.count() == 0

    created = _create_dbx(owner_api, receiver.url, payload_template='{"m": "${model_name}"}')
    before = _row(created["id"])
    refused = owner_api.patch(
        DBX + "update", {"id": created["id"], "payload_template": many}, format="json"
    )
    _refused(refused, str(TEMPLATE_MAX_PLACEHOLDERS), "placeholders")
    assert _row(created["id"]) == before

    # At the limit: accepted.
    at_limit = json.dumps({"d": " ".join(["${model_name}"] * TEMPLATE_MAX_PLACEHOLDERS)})
    accepted = owner_api.patch(
        DBX + "update", {"id": created["id"], "payload_template": at_limit}, format="json"
    )
    assert accepted.status_code == 200, accepted.content


def test_a_body_over_the_cap_is_rendered_by_the_worker_and_fails(
    admin, owner, receiver, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOKS = {**settings.WEBHOOKS, "MAX_BODY_BYTES": 16384}
    owner_api = _client(owner)
    registry_services.model_version_create(actor=admin, name="m", source="s3://b/m/1")
    template = json.dumps({"v": [f"${{value}} {n}" for n in range(20)]})
    created = _create_dbx(owner_api, receiver.url, payload_template=template)

    # 20 copies of a 2,000-character tag value: about 40 kB. The write answers as usual and
    # renders nothing; the delivery holds no body yet.
    with django_capture_on_commit_callbacks() as callbacks:
        response = _set_tag(owner_api, "x" * 2000)
    assert response.status_code == 200, response.content
    assert len(callbacks) == 1
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.body) == (DeliveryStatus.PENDING, "")

    # The worker's try: FAILED at once, with the reason, not retried, nothing sent.
    assert webhook_delivery_send(delivery_id=delivery.pk) == AttemptOutcome.FAILED
    assert webhook_delivery_send(delivery_id=delivery.pk) == "skipped"
    assert webhook_deliveries_sweep()["queued"] == 0
    assert receiver.received == []
    log = owner_api.get(f"/api/2.0/registry/webhooks/{created['id']}/deliveries/{delivery.code}")
    logged = log.json()["delivery"]
    assert logged["status"] == "FAILED"
    assert "WEBHOOKS_MAX_BODY_BYTES" in logged["last_error"]
    assert "16384" in logged["last_error"]
    assert [(a["number"], a["outcome"]) for a in logged["attempts"]] == [(1, "FAILED")]
    assert logged["body"] == ""  # the oversized body was not stored either

    # A value that fits is delivered, the body rendered once and kept.
    _set_tag(owner_api, "small")
    small = WebhookDelivery.objects.order_by("-id").first()
    assert webhook_delivery_send(delivery_id=small.pk) == AttemptOutcome.SUCCESS
    (request,) = receiver.received
    small.refresh_from_db()
    assert request.body == small.body.encode()
    assert json.loads(request.body)["v"][0] == "small 0"

    # A body kept from an earlier try is held to the limit as it is now.
    settings.WEBHOOKS = {**settings.WEBHOOKS, "MAX_BODY_BYTES": 100}
    base = f"/api/2.0/registry/webhooks/{created['id']}/deliveries/{small.code}"
    assert owner_api.post(base + "/redeliver").status_code == 200
    assert webhook_delivery_send(delivery_id=small.pk) == AttemptOutcome.FAILED
    small.refresh_from_db()
    assert "over WEBHOOKS_MAX_BODY_BYTES (100)" in small.last_error
    assert len(receiver.received) == 1


@pytest.mark.django_db(transaction=True)
def test_the_worker_fails_an_oversized_delivery_and_the_write_is_untouched(
    admin, owner, receiver, start_worker, monkeypatch, settings
):
    monkeypatch.setenv("WEBHOOKS_MAX_BODY_BYTES", "16384")
    worker = start_worker()
    assert worker.process is not None
    owner_api = _client(owner)
    registry_services.model_version_create(actor=admin, name="m", source="s3://b/m/1")
    template = json.dumps({"v": [f"${{value}} {n}" for n in range(20)]})
    _create_dbx(owner_api, receiver.url, payload_template=template)

    assert _set_tag(owner_api, "x" * 2000).status_code == 200
    assert _set_tag(owner_api, "fits").status_code == 200

    (request,) = receiver.wait_for(1)
    assert json.loads(request.body)["v"][0] == "fits 0"
    failed = wait_until(
        lambda: WebhookDelivery.objects.filter(status=DeliveryStatus.FAILED).first()
    )
    assert "WEBHOOKS_MAX_BODY_BYTES" in failed.last_error
    assert list(failed.attempts.values_list("outcome", flat=True)) == [AttemptOutcome.FAILED]
    assert len(receiver.received) == 1


@pytest.mark.parametrize(
    ("template", "words"),
    [
        ('{"${payload}": 1}', ("object key",)),
        ('{"a": {"model_${model_name}": "x"}}', ("object key",)),
        ("[" * 5000 + "]" * 5000, ("nested",)),
    ],
)
def test_a_template_that_cannot_render_to_json_is_refused(owner, receiver, template, words):
    owner_api = _client(owner)
    refused = owner_api.post(
        DBX + "create",
        {
            "model_name": "m",
            "events": ["MODEL_VERSION_TAG_SET"],
            "http_url_spec": {"url": receiver.url},
            "payload_template": template,
        },
        format="json",
    )
    _refused(refused, "payload_template", *words)
    assert Webhook.objects.count() == 0

    created = _create_dbx(owner_api, receiver.url)
    before = _row(created["id"])
    refused = owner_api.patch(
        DBX + "update", {"id": created["id"], "payload_template": template}, format="json"
    )
    _refused(refused, "payload_template", *words)
    assert _row(created["id"]) == before


def test_a_stored_template_that_cannot_render_fails_its_delivery_not_the_write(
    admin, owner, receiver
):
    """A hook saved before the rule: the write goes through, the delivery fails with why."""
    owner_api = _client(owner)
    registry_services.model_version_create(actor=admin, name="m", source="s3://b/m/1")
    created = _create_dbx(owner_api, receiver.url)
    Webhook.objects.filter(code=created["id"]).update(payload_template='{"${payload}": 1}')

    response = _set_tag(owner_api)
    assert response.status_code == 200, response.content
    delivery = WebhookDelivery.objects.get()
    assert webhook_delivery_send(delivery_id=delivery.pk) == AttemptOutcome.FAILED
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    assert "payload template" in delivery.last_error
    assert webhook_deliveries_sweep()["queued"] == 0

    # The test call answers with the reason, and its delivery is finished too.
    tested = owner_api.post(DBX + "test", {"id": created["id"]}, format="json")
    assert tested.status_code == 200, tested.content
    assert "payload template" in tested.json()["body"]
    assert "status_code" not in tested.json()
    assert not WebhookDelivery.objects.filter(status=DeliveryStatus.SENDING).exists()
    assert receiver.received == []


# --- Authorization values and URLs that cannot be sent -----------------------------------------


@pytest.mark.parametrize(
    "authorization",
    ["Bearer a\r\nX-Injected: 1", "Bearer a\nb", "Bearer \x01", "Bearer \x7f", "Bearer \u20ac"],
)
def test_an_authorization_that_is_no_header_value_is_refused(owner, receiver, authorization):
    owner_api = _client(owner)
    spec = {"url": receiver.url, "authorization": authorization}
    refused = owner_api.post(
        DBX + "create",
        {"model_name": "m", "events": ["MODEL_VERSION_TAG_SET"], "http_url_spec": spec},
        format="json",
    )
    _refused(refused, "authorization", "control characters", "Latin-1")
    assert Webhook.objects.count() == 0

    created = _create_dbx(owner_api, receiver.url)
    before = _row(created["id"])
    refused = owner_api.patch(
        DBX + "update", {"id": created["id"], "http_url_spec": spec}, format="json"
    )
    _refused(refused, "authorization")
    assert _row(created["id"]) == before
    # The message never repeats the value.
    assert authorization not in refused.json()["message"]


def test_a_latin1_authorization_with_a_tab_is_accepted(owner, receiver):
    created = _create_dbx(_client(owner), receiver.url, http_url_spec={
        "url": receiver.url,
        "authorization": "Token\tcaf\u00e9",
    })  # fmt: skip
    assert _row(created["id"])["authorization"] == "Token\tcaf\u00e9"


def test_a_stored_authorization_that_cannot_be_sent_fails_its_delivery(admin, owner, receiver):
    """A value saved before the rule: the test call answers, the delivery ends FAILED (never
    SENDING), and the reason does not repeat the value."""
    owner_api = _client(owner)
    registry_services.model_version_create(actor=admin, name="m", source="s3://b/m/1")
    created = _create_dbx(owner_api, receiver.url)
    hook = Webhook.objects.get(code=created["id"])
    hook.authorization = "Bearer leaked\r\nX-Injected: 1"
    hook.save(update_fields=["authorization"])

    tested = owner_api.post(DBX + "test", {"id": created["id"]}, format="json")
    assert tested.status_code == 200, tested.content
    assert "Authorization" in tested.json()["body"]
    assert "leaked" not in tested.content.decode()

    assert _set_tag(owner_api).status_code == 200
    delivery = WebhookDelivery.objects.get(is_test=False)
    assert webhook_delivery_send(delivery_id=delivery.pk) == AttemptOutcome.FAILED
    assert webhook_deliveries_sweep()["queued"] == 0
    assert not WebhookDelivery.objects.exclude(status=DeliveryStatus.FAILED).exists()
    assert all("leaked" not in d.last_error for d in WebhookDelivery.objects.all())
    assert receiver.received == []
    hook.refresh_from_db()
    assert hook.status == WebhookStatus.ACTIVE


@pytest.mark.parametrize(
    "url",
    ["https://exa mple.com/hook", "https://example.com/a\x01b", "https://example.com/a b"],
)
def test_a_url_with_spaces_or_control_characters_is_refused(owner, url):
    refused = _client(owner).post(
        DBX + "create",
        {"model_name": "m", "events": ["MODEL_VERSION_TAG_SET"], "http_url_spec": {"url": url}},
        format="json",
    )
    _refused(refused, "URL")
    assert Webhook.objects.count() == 0
