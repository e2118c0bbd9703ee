"""Deleting a version or a model is an event like the others: written to the outbox in the
deletion's transaction and delivered by a real worker to a real receiver; the deletion is on
the version's trail, which stays readable after the version is gone."""

from __future__ import annotations

import time

import pytest
from rest_framework.test import APIClient

from accounts.models import RegisteredModelGrant
from registry.models import Activity, RegisteredModel
from tests.conftest import PASSWORD, basic_auth
from tests.webhooks.snippets import readme_function
from webhooks.models import Webhook, WebhookEvent

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_webhooks")]

MLFLOW = "/api/2.0/mlflow"
SECRET = "deletion-hook-secret"


def as_user(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=basic_auth(user.username, PASSWORD))
    return client


def ok(response) -> dict:
    assert response.status_code == 200, response.content
    return response.json()


def trail(client: APIClient, name: str, version: str) -> list[tuple[str, str, str, str]]:
    body = ok(
        client.get(
            "/api/2.0/registry/model-versions/activities", {"name": name, "version": version}
        )
    )
    return [
        (a["activity_type"], a["user_id"], a["from_stage"], a["to_stage"])
        for a in body["activities"]
    ]


@pytest.fixture
def people(django_user_model, settings, admin):
    settings.REGISTRY = {**settings.REGISTRY, "DEFAULT_PERMISSION_LEVEL": "NONE"}
    found = {"root": admin}
    for name in ("owner", "alice", "carol", "reader"):
        found[name] = django_user_model.objects.create_user(name, password=PASSWORD)
    return found


def test_deleting_a_version_from_production_and_its_model_fires_events_and_keeps_the_trail(
    people, receiver, worker
):
    owner, alice, carol, reader, root = (
        as_user(people[name]) for name in ("owner", "alice", "carol", "reader", "root")
    )
    ok(owner.post(f"{MLFLOW}/registered-models/create", {"name": "fraud"}, format="json"))
    registered_model = RegisteredModel.objects.get(name="fraud")
    for name, level in [
        ("alice", "CAN_MANAGE_PRODUCTION_VERSIONS"),
        ("carol", "CAN_MANAGE_PRODUCTION_VERSIONS"),
        ("reader", "CAN_READ"),
    ]:
        RegisteredModelGrant.objects.create(
            registered_model=registered_model, user=people[name], level=level
        )
    for n in (1, 2):
        ok(
            owner.post(
                f"{MLFLOW}/model-versions/create",
                {"name": "fraud", "source": f"s3://b/fraud/{n}"},
                format="json",
            )
        )
    ok(
        owner.post(
            "/api/2.0/registry/stage-policies/set",
            {"name": "fraud", "stage": "Production", "required_approvals": 2},
            format="json",
        )
    )
    # Version 1 reaches Production through a request and two approvals, with a comment.
    move = {"name": "fraud", "version": "1", "stage": "Production"}
    ok(reader.post(f"{MLFLOW}/transition-requests/create", move, format="json"))
    for approver in (alice, carol):
        ok(
            approver.post(
                f"{MLFLOW}/transition-requests/approve",
                {**move, "archive_existing_versions": False},
                format="json",
            )
        )
    ok(
        reader.post(
            f"{MLFLOW}/comments/create",
            {"name": "fraud", "version": "1", "comment": "drift dashboard: ok"},
            format="json",
        )
    )

    # A per-model hook cannot hear its model's deletion (it goes with the model): refused.
    hooks = Webhook.objects.count()
    refused = owner.post(
        f"{MLFLOW}/registry-webhooks/create",
        {
            "events": ["REGISTERED_MODEL_DELETED"],
            "model_name": "fraud",
            "http_url_spec": {"url": receiver.url, "secret": SECRET},
        },
        format="json",
    )
    assert refused.status_code == 400, refused.content
    assert refused.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert (
        "REGISTERED_MODEL_DELETED can be used only on registry-wide webhooks"
        in (refused.json()["message"])
    )
    assert Webhook.objects.count() == hooks
    ok(
        owner.post(
            f"{MLFLOW}/registry-webhooks/create",
            {
                "events": ["MODEL_VERSION_DELETED"],
                "model_name": "fraud",
                "http_url_spec": {"url": receiver.url + "/model", "secret": SECRET},
            },
            format="json",
        )
    )
    ok(
        root.post(
            f"{MLFLOW}/registry-webhooks/create",
            {
                "events": ["MODEL_VERSION_DELETED", "REGISTERED_MODEL_DELETED"],
                "http_url_spec": {"url": receiver.url + "/all", "secret": SECRET},
            },
            format="json",
        )
    )
    before = trail(reader, "fraud", "1")
    assert before == [
        ("REQUESTED_TRANSITION", "reader", "None", "Production"),
        ("APPROVED_REQUEST", "alice", "None", "Production"),
        ("APPROVED_REQUEST", "carol", "None", "Production"),
        ("NEW_COMMENT", "reader", "", ""),
    ]

    # A version in Production is guarded (docs/api.md, "Governed aliases"): it leaves
    # Production first, then it may be deleted.
    delete = {"name": "fraud", "version": "1"}
    guarded = owner.delete(f"{MLFLOW}/model-versions/delete", delete, format="json")
    assert guarded.status_code == 403, guarded.content
    assert "it is in Production" in guarded.json()["message"]
    ok(
        alice.post(
            f"{MLFLOW}/model-versions/transition-stage",
            {**move, "stage": "Archived", "archive_existing_versions": False},
            format="json",
        )
    )
    ok(owner.delete(f"{MLFLOW}/model-versions/delete", delete, format="json"))

    received = sorted(receiver.wait_for(2), key=lambda r: r.path)
    assert [r.path for r in received] == ["/hook/all", "/hook/model"]
    verify = readme_function("verify_databricks")
    for request in received:
        assert verify(SECRET, request.body, request.headers)
        payload = request.json()
        assert {k: payload[k] for k in ("event", "model_name", "version", "from_stage")} == {
            "event": "MODEL_VERSION_DELETED",
            "model_name": "fraud",
            "version": "1",
            "from_stage": "Archived",
        }
        assert payload["text"] == (
            "owner deleted registered model 'fraud' version 1 (it was in Archived)."
        )
    # The trail of the deleted version, deletion included, for whoever may read the model.
    archived = ("APPLIED_TRANSITION", "alice", "Production", "Archived")
    deleted = ("DELETED_MODEL_VERSION", "owner", "Archived", "")
    assert trail(reader, "fraud", "1") == [*before, archived, deleted]
    preview = ok(
        reader.get(
            "/api/2.0/preview/mlflow/model-versions/get-activities",
            {"name": "fraud", "version": "1"},
        )
    )
    assert [a["activity_type"] for a in preview["activities"]][-1] == "DELETED_MODEL_VERSION"

    ok(owner.delete(f"{MLFLOW}/registered-models/delete", {"name": "fraud"}, format="json"))

    received = receiver.wait_for(3)
    time.sleep(0.3)  # nothing more arrives: the per-model hook went with its model
    assert len(receiver.received) == 3
    model_deleted = received[2]
    assert model_deleted.path == "/hook/all"
    assert verify(SECRET, model_deleted.body, model_deleted.headers)
    payload = model_deleted.json()
    assert (payload["event"], payload["model_name"], payload["text"]) == (
        "REGISTERED_MODEL_DELETED",
        "fraud",
        "owner deleted registered model 'fraud'.",
    )
    assert "version" not in payload
    assert WebhookEvent.objects.filter(event_type="REGISTERED_MODEL_DELETED").count() == 1

    # The model is gone: its readers' grants went with it; registry admins still read the trail.
    gone = reader.get(
        "/api/2.0/registry/model-versions/activities", {"name": "fraud", "version": "1"}
    )
    assert gone.status_code == 404, gone.content
    assert gone.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert trail(root, "fraud", "1") == [*before, archived, deleted]
    assert trail(root, "fraud", "2") == [("DELETED_MODEL_VERSION", "owner", "None", "")]
    assert Activity.objects.get(version=2).system_comment == (
        "Deleted with registered model 'fraud'."
    )
