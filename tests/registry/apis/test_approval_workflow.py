"""The approval workflow driven by the unmodified ``databricks-sdk``, as two different people.

Alice (CAN_EDIT) asks; Bob (CAN_MANAGE_PRODUCTION_VERSIONS) decides. The test checks the fields
the SDK returns (activity types, stages, users, timestamps, available actions) and the stages
afterwards.
"""

from __future__ import annotations

import time

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import NotFound, PermissionDenied, ResourceAlreadyExists
from rest_framework.test import APIClient

from accounts import services as account_services
from accounts.models import RegisteredModelGrant
from registry import services
from registry.models import Activity, ModelVersion, RegisteredModel, TransitionRequest

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def people(django_user_model, monkeypatch, settings):
    settings.REGISTRY = {**settings.REGISTRY, "DEFAULT_PERMISSION_LEVEL": "NONE"}
    for name in ("DATABRICKS_HOST", "DATABRICKS_TOKEN", "DATABRICKS_CONFIG_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", "/nonexistent")
    owner = django_user_model.objects.create_user("owner", password="an-owner-password")
    alice = django_user_model.objects.create_user("alice", password="alice-password-1")
    bob = django_user_model.objects.create_user("bob", password="bob-password-12")
    services.registered_model_create(actor=owner, name="fraud")
    for n in (1, 2):
        services.model_version_create(actor=owner, name="fraud", source=f"s3://b/fraud/{n}")
    registered_model = RegisteredModel.objects.get(name="fraud")
    RegisteredModelGrant.objects.create(
        registered_model=registered_model, user=alice, level="CAN_EDIT"
    )
    RegisteredModelGrant.objects.create(
        registered_model=registered_model, user=bob, level="CAN_MANAGE_PRODUCTION_VERSIONS"
    )
    return alice, bob


def client(live_server, user) -> WorkspaceClient:
    token = account_services.api_token_create(actor=user, name="sdk").secret
    return WorkspaceClient(host=live_server.url, token=token)


def stage_of(version: int) -> str:
    return ModelVersion.objects.get(registered_model__name="fraud", version=version).current_stage


def test_request_approve_reject_cancel_comment_and_direct_transition(live_server, people):
    alice_user, bob_user = people
    alice = client(live_server, alice_user).model_registry
    bob = client(live_server, bob_user).model_registry
    started = int(time.time() * 1000) - 1000

    created = alice.create_transition_request(
        name="fraud", version="1", stage="Production", comment="AUC 0.93 on the holdout"
    ).request
    assert created.to_stage == "Production"
    assert created.user_id == "alice"
    assert created.comment == "AUC 0.93 on the holdout"
    assert created.creation_timestamp >= started
    # Alice may cancel her own request but not decide a move into Production.
    assert [a.value for a in created.available_actions] == ["CANCEL_TRANSITION_REQUEST"]
    with pytest.raises(ResourceAlreadyExists):
        alice.create_transition_request(name="fraud", version="1", stage="Production")

    listed = list(bob.list_transition_requests(name="fraud", version="1"))
    assert len(listed) == 1
    assert (listed[0].activity_type.value, listed[0].to_stage, listed[0].user_id) == (
        "REQUESTED_TRANSITION",
        "Production",
        "alice",
    )
    with pytest.raises(PermissionDenied):
        alice.approve_transition_request(
            name="fraud", version="1", stage="Production", archive_existing_versions=True
        )
    assert stage_of(1) == "None"

    approved = bob.approve_transition_request(
        name="fraud",
        version="1",
        stage="Production",
        archive_existing_versions=True,
        comment="ship it",
    ).activity
    assert approved.activity_type.value == "APPROVED_REQUEST"
    assert (approved.from_stage, approved.to_stage, approved.user_id) == (
        "None",
        "Production",
        "bob",
    )
    assert approved.comment == "ship it"
    assert approved.creation_timestamp >= started
    assert stage_of(1) == "Production"
    assert list(bob.list_transition_requests(name="fraud", version="1")) == []

    # A rejected request closes; the version stays where it was.
    alice.create_transition_request(name="fraud", version="2", stage="Staging")
    rejected = bob.reject_transition_request(
        name="fraud", version="2", stage="Staging", comment="retrain first"
    ).activity
    assert (rejected.activity_type.value, rejected.user_id, rejected.to_stage) == (
        "REJECTED_REQUEST",
        "bob",
        "Staging",
    )
    assert stage_of(2) == "None"

    # The requester cancels her own; nobody else's request is touched.
    alice.create_transition_request(name="fraud", version="2", stage="Staging")
    cancelled = alice.delete_transition_request(
        name="fraud", version="2", stage="Staging", creator="alice", comment="wrong stage"
    ).activity
    assert cancelled.activity_type.value == "CANCELLED_REQUEST"
    with pytest.raises(NotFound):
        alice.delete_transition_request(name="fraud", version="2", stage="Staging", creator="alice")

    # Comments: post, edit, delete.
    comment = alice.create_comment(
        name="fraud", version="1", comment="monitoring dashboard: …"
    ).comment
    assert comment.user_id == "alice"
    assert sorted(a.value for a in comment.available_actions) == ["DELETE_COMMENT", "EDIT_COMMENT"]
    edited = alice.update_comment(id=comment.id, comment="dashboard link fixed").comment
    assert edited.comment == "dashboard link fixed"
    assert edited.last_updated_timestamp >= edited.creation_timestamp
    with pytest.raises(PermissionDenied):
        bob.update_comment(id=comment.id, comment="not mine")
    alice.delete_comment(id=comment.id)

    # Bob moves version 2 directly; Alice (CAN_EDIT) may not.
    with pytest.raises(PermissionDenied):
        alice.transition_stage(
            name="fraud", version="2", stage="Staging", archive_existing_versions=False
        )
    moved = bob.transition_stage(
        name="fraud",
        version="2",
        stage="Staging",
        archive_existing_versions=False,
        comment="canary",
    ).model_version_databricks
    assert (moved.version, moved.current_stage, moved.permission_level.value) == (
        "2",
        "Staging",
        "CAN_MANAGE_PRODUCTION_VERSIONS",
    )
    assert stage_of(2) == "Staging"

    trail = list(
        Activity.objects.filter(model_name="fraud", version=1).values_list(
            "activity_type", "actor_username"
        )
    )
    assert trail == [
        ("REQUESTED_TRANSITION", "alice"),
        ("APPROVED_REQUEST", "bob"),
        ("NEW_COMMENT", "alice"),
    ]
    assert TransitionRequest.objects.filter(status="OPEN").count() == 0


def test_activities_of_a_version(live_server, people):
    alice_user, bob_user = people
    alice = client(live_server, alice_user).model_registry
    bob = client(live_server, bob_user).model_registry
    alice.create_transition_request(name="fraud", version="1", stage="Staging", comment="please")
    bob.approve_transition_request(
        name="fraud", version="1", stage="Staging", archive_existing_versions=False
    )
    reader = APIClient()
    token = account_services.api_token_create(actor=alice_user, name="reader").secret
    reader.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    for path in (
        "/api/2.0/preview/mlflow/model-versions/get-activities",
        "/api/2.0/registry/model-versions/activities",
    ):
        activities = reader.get(path, {"name": "fraud", "version": "1"}).json()["activities"]
        assert [(a["activity_type"], a["user_id"], a["to_stage"]) for a in activities] == [
            ("REQUESTED_TRANSITION", "alice", "Staging"),
            ("APPROVED_REQUEST", "bob", "Staging"),
        ]
        assert all(isinstance(a["creation_timestamp"], int) for a in activities)
