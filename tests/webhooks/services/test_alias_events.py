"""The governed aliases' events: ``MODEL_VERSION_ALIAS_MOVED`` (with ``from_version`` and
``to_version``) and the alias request events, in Databricks' flat payload; MLflow hooks keep
``model_version_alias.created`` / ``.deleted``, whichever way the alias moved."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kernel.errors import RegistryError
from registry import services as registry_services
from webhooks import payloads
from webhooks.models import WebhookEvent, WebhookFlavor
from webhooks.services.management import webhook_create

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_webhooks")]

ALIAS_EVENTS = [
    "MODEL_VERSION_ALIAS_MOVED",
    "ALIAS_REQUEST_CREATED",
    "ALIAS_REQUEST_APPROVED",
    "ALIAS_REQUEST_REJECTED",
]


def _render(event: WebhookEvent) -> dict:
    return payloads.databricks_payload(
        event_type=event.event_type,
        data=event.data,
        webhook_id="0" * 32,
        at=datetime(2024, 1, 1, tzinfo=UTC),
        actor=event.actor_username,
    )


def test_alias_moves_and_requests_are_events(admin):
    webhook_create(
        actor=admin,
        flavor=WebhookFlavor.DATABRICKS,
        events=ALIAS_EVENTS,
        url="https://example.com/dbx",
    )
    webhook_create(
        actor=admin,
        flavor=WebhookFlavor.MLFLOW,
        name="ml",
        events=[
            {"entity": "model_version_alias", "action": "created"},
            {"entity": "model_version_alias", "action": "deleted"},
        ],
        url="https://example.com/ml",
    )
    registry_services.registered_model_create(actor=admin, name="m")
    for n in (1, 2, 3):
        registry_services.model_version_create(actor=admin, name="m", source=f"s3://b/{n}")
    registry_services.registered_model_alias_set(actor=admin, name="m", alias="champion", version=1)
    registry_services.registered_model_alias_set(actor=admin, name="m", alias="champion", version=1)
    registry_services.alias_policy_set(actor=admin, name="m", alias="champion", protected=True)
    registry_services.alias_request_create(
        actor=admin, name="m", alias="champion", version=2, comment="better"
    )
    registry_services.alias_request_approve(actor=admin, name="m", alias="champion", version=2)
    registry_services.alias_request_create(actor=admin, name="m", alias="champion", version=3)
    registry_services.alias_request_reject(
        actor=admin, name="m", alias="champion", version=3, comment="not yet"
    )

    events = list(WebhookEvent.objects.order_by("created_at", "id"))
    assert [
        (e.event_type, e.data.get("from_version"), e.data.get("to_version")) for e in events
    ] == [
        ("MODEL_VERSION_ALIAS_CREATED", None, None),
        ("MODEL_VERSION_ALIAS_MOVED", "", "1"),
        # Set again to the version it names: MLflow's event, but no move.
        ("MODEL_VERSION_ALIAS_CREATED", None, None),
        ("ALIAS_REQUEST_CREATED", "1", "2"),
        ("MODEL_VERSION_ALIAS_CREATED", None, None),
        ("MODEL_VERSION_ALIAS_MOVED", "1", "2"),
        ("ALIAS_REQUEST_APPROVED", "1", "2"),
        ("ALIAS_REQUEST_CREATED", "2", "3"),
        ("ALIAS_REQUEST_REJECTED", "2", "3"),
    ]
    moved = _render(events[5])
    assert {key: moved[key] for key in ("event", "model_name", "version", "alias")} == {
        "event": "MODEL_VERSION_ALIAS_MOVED",
        "model_name": "m",
        "version": "2",
        "alias": "champion",
    }
    assert (moved["from_version"], moved["to_version"]) == ("1", "2")
    assert (
        moved["text"]
        == "root moved alias 'champion' of registered model 'm' from version 1 to version 2."
    )
    rejected = _render(events[8])
    assert (rejected["comment"], rejected["text"]) == (
        "not yet",
        "root rejected pointing alias 'champion' at registered model 'm' version 3.",
    )
    assert rejected["request_id"]
    # MLflow hooks get the alias set whichever way it moved, in MLflow's shape.
    created = payloads.mlflow_payload(
        event_type=events[4].event_type, data=events[4].data, at=datetime(2024, 1, 1, tzinfo=UTC)
    )
    assert (created["entity"], created["action"], created["data"]) == (
        "model_version_alias",
        "created",
        {"name": "m", "alias": "champion", "version": "2"},
    )


def test_mlflow_hooks_cannot_subscribe_to_the_registrys_alias_events(admin):
    with pytest.raises(RegistryError):
        webhook_create(
            actor=admin,
            flavor=WebhookFlavor.MLFLOW,
            name="ml",
            events=[{"entity": "model_version_alias", "action": "moved"}],
            url="https://example.com/ml",
        )
