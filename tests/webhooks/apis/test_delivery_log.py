"""The delivery log: ``/api/2.0/registry/webhooks/{id}/deliveries...``."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from registry import services as registry_services
from tests.conftest import basic_auth
from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookFlavor
from webhooks.services.delivery import webhook_delivery_send
from webhooks.services.management import webhook_create

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_webhooks")]


@pytest.fixture
def admin_api(admin) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=basic_auth(admin.username))
    return client


def test_list_get_and_redeliver(
    admin, admin_api, api, receiver, django_capture_on_commit_callbacks
):
    receiver.respond = lambda request, index: 500 if index == 0 else 200
    hook = webhook_create(
        actor=admin,
        flavor=WebhookFlavor.DATABRICKS,
        events=["MODEL_VERSION_TAG_SET"],
        url=receiver.url,
        secret="k",
    )
    registry_services.registered_model_create(actor=admin, name="m")
    registry_services.model_version_create(actor=admin, name="m", source="s3://x/1")
    for value in ("a", "b", "c"):
        registry_services.model_version_tag_set(
            actor=admin, name="m", version="1", key="k", value=value
        )
    first = WebhookDelivery.objects.order_by("id").first()
    webhook_delivery_send(delivery_id=first.pk)  # 500: retry later

    base = f"/api/2.0/registry/webhooks/{hook.code.hex}/deliveries"
    page = admin_api.get(base, {"max_results": 2}).json()
    assert len(page["deliveries"]) == 2
    rest = admin_api.get(base, {"max_results": 2, "page_token": page["next_page_token"]}).json()
    assert "next_page_token" not in rest
    listed = page["deliveries"] + rest["deliveries"]
    assert [d["delivery_id"] for d in listed] == [
        str(code) for code in WebhookDelivery.objects.order_by("-id").values_list("code", flat=True)
    ]
    assert (listed[-1]["status"], listed[-1]["attempt_count"]) == ("PENDING", 1)

    detail = admin_api.get(f"{base}/{first.code}").json()["delivery"]
    assert detail["last_error"] == "HTTP 500"
    assert [(a["number"], a["outcome"], a["response_status"]) for a in detail["attempts"]] == [
        (1, "RETRY", 500)
    ]
    assert '"value": "a"' in detail["body"]

    # Still pending: refused. Delivered: redelivered with the same id, attempts go on counting.
    refused = admin_api.post(f"{base}/{first.code}/redeliver")
    assert (refused.status_code, refused.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    WebhookDelivery.objects.filter(pk=first.pk).update(next_attempt_at=first.created_at)
    webhook_delivery_send(delivery_id=first.pk)
    with django_capture_on_commit_callbacks() as callbacks:
        again = admin_api.post(f"{base}/{first.code}/redeliver")
    assert again.status_code == 200
    assert again.json()["delivery"]["status"] == "PENDING"
    assert len(callbacks) == 1
    webhook_delivery_send(delivery_id=first.pk)
    first.refresh_from_db()
    assert first.status == DeliveryStatus.SUCCESS
    assert [a.number for a in first.attempts.order_by("number")] == [1, 2, 3]
    assert len({r.headers["X-Registry-Delivery-Id"] for r in receiver.received}) == 1

    # A user who cannot manage the (registry-wide) hook sees nothing of its log.
    denied = api.get(base)
    assert denied.status_code == 403
    missing = admin_api.get("/api/2.0/registry/webhooks/nope/deliveries")
    assert (missing.status_code, missing.json()["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")
    assert missing.json()["message"] == "Webhook with ID nope not found."
