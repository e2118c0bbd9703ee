"""The unmodified ``mlflow`` client manages MLflow 3.x webhooks against a live server."""

from __future__ import annotations

import logging

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.entities.webhook import WebhookEvent, WebhookStatus
from mlflow.exceptions import MlflowException
from rest_framework.test import APIClient

from registry import services as registry_services
from tests.conftest import PASSWORD, basic_auth
from tests.webhooks.snippets import readme_function
from webhooks.models import WebhookDelivery

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "mlflow-secret-never-echoed"


def _client(live_server, username, monkeypatch) -> MlflowClient:
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", username)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORD)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    mlflow.set_registry_uri(live_server.url)
    return MlflowClient(tracking_uri=live_server.url, registry_uri=live_server.url)


def test_mlflow_client_manages_webhooks(live_server, admin, receiver, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    client = _client(live_server, admin.username, monkeypatch)

    hook = client.create_webhook(
        name="deploys",
        url=receiver.url,
        events=["model_version.created", WebhookEvent("registered_model", "created")],
        description="d",
        secret=SECRET,
    )
    assert hook.name == "deploys"
    assert hook.status == WebhookStatus.ACTIVE
    assert sorted(str(e) for e in hook.events) == [
        "model_version.created",
        "registered_model.created",
    ]
    assert len(hook.webhook_id) == 36

    fetched = client.get_webhook(hook.webhook_id)
    assert (fetched.name, fetched.url, fetched.description) == ("deploys", receiver.url, "d")

    result = client.test_webhook(hook.webhook_id)
    assert result.success is True
    assert result.response_status == 200
    assert result.response_body == '{"ok": true}'
    (request,) = receiver.received
    assert (request.json()["entity"], request.json()["action"]) == ("model_version", "created")
    assert readme_function("verify_mlflow")(SECRET, request.body, request.headers)

    result = client.test_webhook(hook.webhook_id, event="registered_model.created")
    assert result.success is True
    assert receiver.received[1].json()["data"] == {
        "name": "example_model",
        "tags": {"example_key": "example_value"},
        "description": "An example model version",
    }

    updated = client.update_webhook(
        hook.webhook_id, name="deploys2", status="DISABLED", events=["model_version_tag.set"]
    )
    assert updated.name == "deploys2"
    assert updated.status == WebhookStatus.DISABLED
    assert [str(e) for e in updated.events] == ["model_version_tag.set"]
    registry_services.registered_model_create(actor=admin, name="m")
    registry_services.model_version_create(actor=admin, name="m", source="s3://b/m/1")
    registry_services.model_version_tag_set(actor=admin, name="m", version="1", key="k", value="v")
    assert WebhookDelivery.objects.filter(is_test=False).count() == 0  # DISABLED never fires

    second = client.create_webhook(
        name="other", url=receiver.url, events=["model_version_alias.deleted"]
    )
    page = client.list_webhooks(max_results=1)
    assert [h.webhook_id for h in page] == [second.webhook_id]
    rest = client.list_webhooks(max_results=1, page_token=page.token)
    assert [h.webhook_id for h in rest] == [hook.webhook_id]
    assert not rest.token

    body = APIClient()
    body.credentials(HTTP_AUTHORIZATION=basic_auth(admin.username))
    for path in ("webhooks", f"webhooks/{hook.webhook_id}"):
        assert SECRET not in body.get(f"/api/2.0/mlflow/{path}").content.decode()
    assert SECRET not in _server_log(caplog)

    client.delete_webhook(hook.webhook_id)
    client.delete_webhook(second.webhook_id)
    with pytest.raises(MlflowException, match="not found"):
        client.get_webhook(hook.webhook_id)
    assert list(client.list_webhooks()) == []


def test_mlflow_webhook_refusals(live_server, admin, user, monkeypatch):
    client = _client(live_server, admin.username, monkeypatch)
    with pytest.raises(MlflowException, match="not supported"):
        client.create_webhook(name="p", url="https://example.com/h", events=["prompt.created"])
    with pytest.raises(MlflowException, match="Invalid webhook name"):
        client.create_webhook(
            name="bad name!", url="https://example.com/h", events=["model_version.created"]
        )
    with pytest.raises(MlflowException, match="scheme"):
        client.create_webhook(name="s", url="ftp://example.com/h", events=["model_version.created"])
    outsider = _client(live_server, user.username, monkeypatch)
    with pytest.raises(MlflowException) as excinfo:
        outsider.create_webhook(
            name="x", url="https://example.com/h", events=["model_version.created"]
        )
    assert excinfo.value.error_code == "PERMISSION_DENIED"


def _server_log(caplog) -> str:
    """What the service logged (the client libraries in this process log their own requests)."""
    return "\n".join(
        record.getMessage()
        for record in caplog.records
        if record.name.split(".")[0]
        in {"webhooks", "registry", "accounts", "config", "django", "celery"}
    )
