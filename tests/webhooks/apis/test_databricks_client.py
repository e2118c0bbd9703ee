"""The unmodified ``databricks-sdk`` manages registry webhooks against a live server."""

from __future__ import annotations

import logging

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import InvalidParameterValue, PermissionDenied, ResourceDoesNotExist
from databricks.sdk.service.ml import HttpUrlSpec, RegistryWebhookEvent, RegistryWebhookStatus

from registry import services as registry_services
from tests.conftest import PASSWORD, basic_auth
from tests.webhooks.snippets import readme_function
from webhooks.models import DeliveryStatus, Webhook, WebhookDelivery

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "dbx-secret-never-echoed"
AUTHORIZATION = "Bearer never-echoed-either"


def _workspace(live_server, username, monkeypatch) -> WorkspaceClient:
    for name in ("DATABRICKS_HOST", "DATABRICKS_TOKEN", "DATABRICKS_CONFIG_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", "/nonexistent")
    return WorkspaceClient(
        host=live_server.url, username=username, password=PASSWORD, auth_type="basic"
    )


@pytest.fixture
def workspace(live_server, admin, monkeypatch) -> WorkspaceClient:
    return _workspace(live_server, admin.username, monkeypatch)


def test_sdk_creates_lists_updates_tests_and_deletes(workspace, receiver, admin, caplog, client):
    caplog.set_level(logging.DEBUG)
    registry_services.registered_model_create(actor=admin, name="m1")
    registry = workspace.model_registry

    created = registry.create_webhook(
        events=[RegistryWebhookEvent.MODEL_VERSION_CREATED],
        description="deploys",
        model_name="m1",
        http_url_spec=HttpUrlSpec(
            url=receiver.url,
            secret=SECRET,
            authorization=AUTHORIZATION,
            enable_ssl_verification=False,
        ),
        status=RegistryWebhookStatus.TEST_MODE,
    ).webhook
    assert created.model_name == "m1"
    assert created.events == [RegistryWebhookEvent.MODEL_VERSION_CREATED]
    assert created.status == RegistryWebhookStatus.TEST_MODE
    assert created.http_url_spec.url == receiver.url
    assert created.http_url_spec.enable_ssl_verification is False
    assert not hasattr(created.http_url_spec, "secret")  # the SDK's type has no such field
    assert len(created.id) == 32

    # TEST_MODE: a real event does not fire; test does.
    registry_services.model_version_create(actor=admin, name="m1", source="s3://b/m1/1")
    assert WebhookDelivery.objects.count() == 0
    result = registry.test_registry_webhook(id=created.id)
    assert (result.status_code, result.body) == (200, '{"ok": true}')
    (request,) = receiver.received
    assert request.json()["event"] == "MODEL_VERSION_CREATED"
    assert request.json()["webhook_id"] == created.id
    assert request.headers["Authorization"] == AUTHORIZATION
    assert readme_function("verify_databricks")(SECRET, request.body, request.headers)

    updated = registry.update_webhook(
        id=created.id,
        status=RegistryWebhookStatus.ACTIVE,
        events=[
            RegistryWebhookEvent.MODEL_VERSION_CREATED,
            RegistryWebhookEvent.MODEL_VERSION_TAG_SET,
        ],
    ).webhook
    assert updated.status == RegistryWebhookStatus.ACTIVE
    assert updated.events == [
        RegistryWebhookEvent.MODEL_VERSION_CREATED,
        RegistryWebhookEvent.MODEL_VERSION_TAG_SET,
    ]
    registry_services.model_version_create(actor=admin, name="m1", source="s3://b/m1/2")
    assert WebhookDelivery.objects.filter(is_test=False, status=DeliveryStatus.PENDING).count() == 1

    wide = registry.create_webhook(
        events=[RegistryWebhookEvent.REGISTERED_MODEL_CREATED],
        http_url_spec=HttpUrlSpec(url=receiver.url),
    ).webhook
    assert wide.model_name is None
    assert wide.status == RegistryWebhookStatus.ACTIVE

    every = list(registry.list_webhooks())
    assert [h.id for h in every] == [wide.id, created.id]  # newest first
    assert [h.id for h in registry.list_webhooks(model_name="m1")] == [created.id]
    assert [
        h.id for h in registry.list_webhooks(events=[RegistryWebhookEvent.REGISTERED_MODEL_CREATED])
    ] == [wide.id]
    paged = list(registry.list_webhooks(max_results=1))  # the SDK follows next_page_token
    assert [h.id for h in paged] == [wide.id, created.id]

    # The secret and the authorization value are never echoed, nor logged.
    for path in ("registry-webhooks/list", "registry-webhooks/list?model_name=m1"):
        body = client.get(f"/api/2.0/mlflow/{path}").content.decode()
        assert SECRET not in body
        assert AUTHORIZATION not in body
    assert SECRET not in _server_log(caplog)
    assert AUTHORIZATION.split()[1] not in _server_log(caplog)

    registry.delete_webhook(id=created.id)
    registry.delete_webhook(id=wide.id)
    assert list(registry.list_webhooks()) == []
    with pytest.raises(ResourceDoesNotExist):
        registry.delete_webhook(id=created.id)


def test_sdk_errors(workspace, admin, live_server, user, monkeypatch):
    with pytest.raises(InvalidParameterValue):
        workspace.model_registry.create_webhook(
            events=[RegistryWebhookEvent.MODEL_VERSION_CREATED],
            http_url_spec=HttpUrlSpec(url="ftp://example.com/hook"),
        )
    registry_services.registered_model_create(actor=admin, name="m1")
    with pytest.raises(InvalidParameterValue, match="registry-wide"):
        workspace.model_registry.create_webhook(
            events=[RegistryWebhookEvent.REGISTERED_MODEL_CREATED],
            model_name="m1",
            http_url_spec=HttpUrlSpec(url="https://example.com/hook"),
        )
    with pytest.raises(ResourceDoesNotExist):
        workspace.model_registry.create_webhook(
            events=[RegistryWebhookEvent.MODEL_VERSION_CREATED],
            model_name="missing",
            http_url_spec=HttpUrlSpec(url="https://example.com/hook"),
        )
    # A user without CAN_MANAGE: neither model-specific nor registry-wide hooks.
    outsider = _workspace(live_server, user.username, monkeypatch)
    for model_name in ("m1", None):
        with pytest.raises(PermissionDenied):
            outsider.model_registry.create_webhook(
                events=[RegistryWebhookEvent.MODEL_VERSION_CREATED],
                model_name=model_name,
                http_url_spec=HttpUrlSpec(url="https://example.com/hook"),
            )
    assert Webhook.objects.count() == 0
    assert list(outsider.model_registry.list_webhooks()) == []


def test_preview_prefix_and_the_older_clients_request_style(client, admin):
    """``databricks-registry-webhooks`` calls /preview/, always sends status and max_results,
    and sends DELETE with a JSON body."""
    base = "/api/2.0/preview/mlflow/registry-webhooks"
    created = client.post(
        f"{base}/create",
        {
            "events": ["REGISTERED_MODEL_CREATED"],
            "http_url_spec": {"url": "https://example.com/hook", "secret": SECRET},
        },
        format="json",
    )
    assert created.status_code == 200, created.content
    hook_id = created.json()["webhook"]["id"]
    assert SECRET not in created.content.decode()
    listed = client.get(f"{base}/list", {"max_results": 1000})
    assert [h["id"] for h in listed.json()["webhooks"]] == [hook_id]
    updated = client.patch(
        f"{base}/update", {"id": hook_id, "status": "ACTIVE", "description": "d"}, format="json"
    )
    assert updated.json()["webhook"]["description"] == "d"
    deleted = client.delete(f"{base}/delete", {"id": hook_id}, format="json")
    assert (deleted.status_code, deleted.json()) == (200, {})
    assert Webhook.objects.count() == 0


@pytest.fixture
def client(admin):
    from rest_framework.test import APIClient

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=basic_auth(admin.username))
    return api


def _server_log(caplog) -> str:
    """What the service logged (the client libraries in this process log their own requests)."""
    return "\n".join(
        record.getMessage()
        for record in caplog.records
        if record.name.split(".")[0]
        in {"webhooks", "registry", "accounts", "config", "django", "celery"}
    )
