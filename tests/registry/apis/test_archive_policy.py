"""``archive_existing_versions`` obeys the Archived stage's policy: each version it would archive
must be a move the actor could make directly into Archived. Otherwise the whole transition is
refused, naming the Archived policy, and nothing changes: stages, requests, approvals, the
trail, the webhook outbox (docs/architecture.md, "The approval workflow")."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.models import RegisteredModelGrant
from registry import services
from registry.models import (
    Activity,
    ModelVersion,
    RegisteredModel,
    TransitionApproval,
    TransitionRequest,
)
from tests.conftest import PASSWORD, basic_auth
from webhooks.models import WebhookDelivery, WebhookEvent, WebhookFlavor
from webhooks.services.management import webhook_create

pytestmark = pytest.mark.django_db

MLFLOW = "/api/2.0/mlflow"
REGISTRY = "/api/2.0/registry"


def as_user(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=basic_auth(user.username, PASSWORD))
    return client


@pytest.fixture
def team(django_user_model, settings):
    """root (admin), owner (CAN_MANAGE), alice and carol (Production level). Version 1 is in
    Production, version 2 in Staging; a registry-wide hook listens to every stage event."""
    settings.REGISTRY = {**settings.REGISTRY, "DEFAULT_PERMISSION_LEVEL": "NONE"}
    people = {
        "root": django_user_model.objects.create_superuser("root", password=PASSWORD),
        "owner": django_user_model.objects.create_user("owner", password=PASSWORD),
    }
    services.registered_model_create(actor=people["owner"], name="m")
    registered_model = RegisteredModel.objects.get()
    for name in ("alice", "carol"):
        people[name] = django_user_model.objects.create_user(name, password=PASSWORD)
        RegisteredModelGrant.objects.create(
            registered_model=registered_model,
            user=people[name],
            level="CAN_MANAGE_PRODUCTION_VERSIONS",
        )
    for n, stage in ((1, "Production"), (2, "Staging")):
        services.model_version_create(actor=people["owner"], name="m", source=f"s3://b/m/{n}")
        services.model_version_stage_transition(
            actor=people["owner"], name="m", version=str(n), stage=stage
        )
    webhook_create(
        actor=people["root"],
        flavor=WebhookFlavor.DATABRICKS,
        events=[
            "MODEL_VERSION_TRANSITIONED_STAGE",
            "MODEL_VERSION_TRANSITIONED_TO_ARCHIVED",
            "MODEL_VERSION_TRANSITIONED_TO_PRODUCTION",
            "TRANSITION_REQUEST_APPROVED",
        ],
        url="https://example.com/hook",
    )
    return people


def set_policy(client: APIClient, **fields) -> None:
    response = client.post(f"{REGISTRY}/stage-policies/set", fields, format="json")
    assert response.status_code == 200, response.content


def state():
    return (
        list(ModelVersion.objects.order_by("version").values_list("version", "current_stage")),
        list(TransitionRequest.objects.order_by("pk").values_list("pk", "status")),
        TransitionApproval.objects.count(),
        list(Activity.objects.order_by("pk").values_list("pk", flat=True)),
        WebhookEvent.objects.count(),
        WebhookDelivery.objects.count(),
    )


def assert_refused(response, *words: str) -> None:
    assert response.status_code == 403, response.content
    body = response.json()
    assert body["error_code"] == "PERMISSION_DENIED"
    for word in words:
        assert word in body["message"], body["message"]


TRANSITION_PATHS = (
    f"{MLFLOW}/model-versions/transition-stage",
    f"{MLFLOW}/databricks/model-versions/transition-stage",
)


@pytest.mark.parametrize("path", TRANSITION_PATHS)
def test_a_direct_move_may_not_archive_what_the_archived_policy_keeps(team, path):
    set_policy(as_user(team["owner"]), name="m", stage="Archived", allow_direct_transition=False)
    alice = as_user(team["alice"])
    before = state()

    response = alice.post(
        path,
        {"name": "m", "version": "2", "stage": "Production", "archive_existing_versions": True},
        format="json",
    )

    assert_refused(
        response,
        "Archived stage policy of model 'm'",
        "allow_direct_transition is off",
        "archive_existing_versions",
        "version 1",
    )
    assert state() == before
    assert before[0] == [(1, "Production"), (2, "Staging")]

    # Without archiving, the move itself is allowed: the Production policy permits it.
    response = alice.post(
        path,
        {"name": "m", "version": "2", "stage": "Production", "archive_existing_versions": False},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert state()[0] == [(1, "Production"), (2, "Production")]


def test_the_registry_wide_archived_policy_is_a_floor_for_archiving(team):
    """Required tags of the registry-wide Archived policy: version 1 lacks them, so it may not
    be archived as a side effect; once it carries them, the same call archives it."""
    set_policy(
        as_user(team["root"]),
        stage="Archived",
        required_version_tags=[{"key": "retired_reason", "value": "superseded"}],
    )
    alice = as_user(team["alice"])
    body = {"name": "m", "version": "2", "stage": "Production", "archive_existing_versions": True}
    before = state()

    response = alice.post(f"{MLFLOW}/model-versions/transition-stage", body, format="json")

    assert_refused(
        response,
        "registry-wide Archived stage policy",
        "required_version_tags needs retired_reason=superseded on version 1",
    )
    assert state() == before

    response = alice.post(
        f"{MLFLOW}/model-versions/set-tag",
        {"name": "m", "version": "1", "key": "retired_reason", "value": "superseded"},
        format="json",
    )
    assert response.status_code == 200, response.content
    response = alice.post(f"{MLFLOW}/model-versions/transition-stage", body, format="json")
    assert response.status_code == 200, response.content
    assert state()[0] == [(1, "Archived"), (2, "Production")]
    archived = Activity.objects.filter(version=1).latest("pk")
    assert (archived.activity_type, archived.to_stage, archived.actor_username) == (
        "SYSTEM_TRANSITION",
        "Archived",
        "alice",
    )


def test_an_approval_may_not_archive_what_the_archived_policy_keeps(team):
    """The completing approval of a request with archive_existing_versions is refused whole:
    the request stays open without the approval, the versions stay where they were."""
    owner = as_user(team["owner"])
    set_policy(owner, name="m", stage="Production", required_approvals=2)
    set_policy(owner, name="m", stage="Archived", allow_direct_transition=False)
    alice, carol = as_user(team["alice"]), as_user(team["carol"])
    decision = {"name": "m", "version": "2", "stage": "Production"}
    response = owner.post(f"{MLFLOW}/transition-requests/create", decision, format="json")
    assert response.status_code == 200, response.content
    response = alice.post(
        f"{MLFLOW}/transition-requests/approve",
        {**decision, "archive_existing_versions": True},
        format="json",
    )
    assert response.status_code == 200, response.content  # 1 of 2: nothing moves yet
    before = state()

    response = carol.post(
        f"{MLFLOW}/transition-requests/approve",
        {**decision, "archive_existing_versions": True},
        format="json",
    )

    assert_refused(response, "Archived stage policy of model 'm'", "allow_direct_transition")
    assert state() == before
    assert TransitionRequest.objects.get().status == "OPEN"
    assert TransitionApproval.objects.get().approver_username == "alice"

    # The same approval without archiving completes the request.
    response = carol.post(
        f"{MLFLOW}/transition-requests/approve",
        {**decision, "archive_existing_versions": False},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert state()[0] == [(1, "Production"), (2, "Production")]
    assert TransitionRequest.objects.get().status == "APPROVED"


def test_archiving_still_works_when_the_archived_policy_allows_it(team):
    """The default Archived policy (Databricks' behaviour) lets whoever may make the move archive
    the others, each with its SYSTEM_TRANSITION entry and its webhook event."""
    response = as_user(team["alice"]).post(
        f"{MLFLOW}/model-versions/transition-stage",
        {"name": "m", "version": "2", "stage": "Production", "archive_existing_versions": True},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert state()[0] == [(1, "Archived"), (2, "Production")]
    assert WebhookEvent.objects.filter(
        event_type="MODEL_VERSION_TRANSITIONED_TO_ARCHIVED", version="1"
    ).exists()
