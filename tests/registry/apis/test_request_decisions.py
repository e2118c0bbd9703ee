"""Deciding a transition request decides the request the decider read, with approvals that
still count.

- Approve, reject and cancel name a request by model, version and stage, as Databricks' API
  does. A rename between reading a request and deciding it can put another model's request
  behind the same names; the optional ``request_id`` (the ``id`` the list gives, which the web
  UI always sends) makes such a call refuse and change nothing.
- When the approval that completes the count would apply the move, every approval is checked
  again: one whose approver lost the level (or a requester's own, once the policy forbids it)
  no longer counts, and the request stays open saying how many do.
"""

from __future__ import annotations

import uuid

import pytest
from django.test import Client
from django.urls import reverse
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
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.django_db

WORKFLOW = "/api/2.0/mlflow/transition-requests/"


@pytest.fixture
def people(django_user_model, settings):
    """owner (CAN_MANAGE), alice (CAN_EDIT), bob, carol and dave (Production level), on the
    models ``fraud`` and ``other``, each with a version 1."""
    settings.REGISTRY = {**settings.REGISTRY, "DEFAULT_PERMISSION_LEVEL": "NONE"}
    users = {
        name: django_user_model.objects.create_user(name, password=PASSWORD)
        for name in ("owner", "alice", "bob", "carol", "dave")
    }
    for model in ("fraud", "other"):
        services.registered_model_create(actor=users["owner"], name=model)
        services.model_version_create(actor=users["owner"], name=model, source=f"s3://b/{model}")
        registered_model = RegisteredModel.objects.get(name=model)
        for name, level in [
            ("alice", "CAN_EDIT"),
            ("bob", "CAN_MANAGE_PRODUCTION_VERSIONS"),
            ("carol", "CAN_MANAGE_PRODUCTION_VERSIONS"),
            ("dave", "CAN_MANAGE_PRODUCTION_VERSIONS"),
        ]:
            RegisteredModelGrant.objects.create(
                registered_model=registered_model, user=users[name], level=level
            )
    return users


def api(username: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=basic_auth(username))
    return client


def ask(username: str, model: str) -> str:
    response = api(username).post(
        WORKFLOW + "create",
        {"name": model, "version": "1", "stage": "Production", "comment": f"ship {model}"},
        format="json",
    )
    assert response.status_code == 200, response.content
    return response.json()["request"]["id"]


def approve(username: str, model: str, **extra):
    return api(username).post(
        WORKFLOW + "approve",
        {
            "name": model,
            "version": "1",
            "stage": "Production",
            "archive_existing_versions": False,
            **extra,
        },
        format="json",
    )


def state():
    return (
        sorted(ModelVersion.objects.values_list("registered_model__code", "current_stage")),
        sorted(TransitionRequest.objects.values_list("code", "status")),
        TransitionApproval.objects.count(),
        Activity.objects.count(),
        WebhookEvent.objects.count(),
    )


def rename_other_into_fraud(owner) -> None:
    """The model ``fraud`` becomes ``fraud-retired`` and ``other`` takes the name ``fraud``."""
    for old, new in [("fraud", "fraud-retired"), ("other", "fraud")]:
        response = api(owner.username).post(
            "/api/2.0/mlflow/registered-models/rename",
            {"name": old, "new_name": new},
            format="json",
        )
        assert response.status_code == 200, response.content


def test_a_rename_cannot_make_an_approver_decide_another_request(people):
    reviewed = ask("alice", "fraud")
    unseen = ask("alice", "other")
    listed = api("bob").get(WORKFLOW + "list", {"name": "fraud", "version": "1"}).json()
    assert [request["id"] for request in listed["requests"]] == [reviewed]

    rename_other_into_fraud(people["owner"])
    before = state()
    names = {"name": "fraud", "version": "1", "stage": "Production", "request_id": reviewed}
    for response in [
        approve("bob", "fraud", request_id=reviewed),
        api("bob").post(WORKFLOW + "reject", names, format="json"),
        api("alice").delete(WORKFLOW + "delete", {**names, "creator": "alice"}, format="json"),
    ]:
        assert response.status_code == 400, response.content
        body = response.json()
        assert body["error_code"] == "INVALID_PARAMETER_VALUE"
        expected = f"Request {reviewed} is not the open request to move version 1 of 'fraud'"
        assert expected in body["message"]
        assert "renamed" in body["message"]
    assert state() == before

    # Not an id at all: refused as such, nothing changes.
    response = approve("bob", "fraud", request_id="not-an-id")
    assert response.status_code == 400
    message = response.json()["message"]
    assert "Parameter 'request_id' must be the id of a transition request" in message
    assert state() == before

    # Under its new name the reviewed request is decided; the other one is untouched.
    response = approve("bob", "fraud-retired", request_id=reviewed)
    assert response.status_code == 200, response.content
    statuses = dict(TransitionRequest.objects.values_list("code", "status"))
    assert (statuses[uuid.UUID(reviewed)], statuses[uuid.UUID(unseen)]) == (
        "APPROVED",
        "OPEN",
    )
    stages = dict(ModelVersion.objects.values_list("registered_model__name", "current_stage"))
    assert stages == {"fraud-retired": "Production", "fraud": "None"}


def test_the_web_ui_decides_only_the_request_it_showed(people, monkeypatch):
    """The form posts for one request; a rename that lands between the page's lookup and the
    decision (simulated here just before the service runs) is refused, not applied to the
    request that now has the names."""
    reviewed = services.transition_request_create(
        actor=people["alice"], name="fraud", version=1, stage="Production"
    )
    services.transition_request_create(
        actor=people["alice"], name="other", version=1, stage="Production"
    )
    decide = services.transition_request_approve

    def renamed_meanwhile(**kwargs):
        rename_other_into_fraud(people["owner"])
        return decide(**kwargs)

    monkeypatch.setattr(services, "transition_request_approve", renamed_meanwhile)
    client = Client()
    client.force_login(people["bob"])
    url = reverse(
        "ui:request-decide",
        kwargs={"name": "fraud", "version": 1, "code": str(reviewed.code), "decision": "approve"},
    )
    response = client.post(url, {f"r-{reviewed.code}-comment": "ship it"}, follow=True)

    # Refused, and back on the version's page with the refusal (post/redirect/get).
    page = reverse("ui:version-detail", kwargs={"name": "fraud", "version": 1})
    assert response.redirect_chain == [(page, 303)]
    assert f"Request {reviewed.code} is not the open request" in response.content.decode()
    assert set(TransitionRequest.objects.values_list("status", flat=True)) == {"OPEN"}
    assert not TransitionApproval.objects.exists()
    assert set(ModelVersion.objects.values_list("current_stage", flat=True)) == {"None"}


def set_policy(**fields) -> None:
    response = api("owner").post(
        "/api/2.0/registry/stage-policies/set",
        {"name": "fraud", "stage": "Production", **fields},
        format="json",
    )
    assert response.status_code == 200, response.content


def test_an_approval_whose_approver_lost_the_level_no_longer_counts(people):
    set_policy(required_approvals=2)
    ask("alice", "fraud")
    assert approve("carol", "fraud").status_code == 200
    # The owner lowers carol's grant before the request completes.
    code = RegisteredModel.objects.get(name="fraud").code
    response = api("owner").patch(
        f"/api/2.0/permissions/registered-models/{code}",
        {"access_control_list": [{"user_name": "carol", "permission_level": "CAN_READ"}]},
        format="json",
    )
    assert response.status_code == 200, response.content

    response = approve("dave", "fraud", comment="looks good")
    assert response.status_code == 200, response.content
    activity = Activity.objects.get(pk=response.json()["activity"]["id"])
    assert activity.system_comment.startswith("Approval 1 of 2: the request stays open")
    assert (
        "no longer count: carol (now holds CAN_READ; the move needs "
        "CAN_MANAGE_PRODUCTION_VERSIONS)" in activity.system_comment
    )
    assert TransitionRequest.objects.get(model_version__registered_model__name="fraud").status == (
        "OPEN"
    )
    assert ModelVersion.objects.get(registered_model__name="fraud").current_stage == "None"

    # A second approver who still holds the level completes it.
    assert approve("bob", "fraud").status_code == 200
    assert ModelVersion.objects.get(registered_model__name="fraud").current_stage == "Production"


def test_a_self_approval_stops_counting_once_the_policy_forbids_it(people):
    set_policy(required_approvals=2, allow_self_approval=True)
    ask("bob", "fraud")
    assert approve("bob", "fraud").status_code == 200  # allowed when given
    set_policy(allow_self_approval=False)

    response = approve("carol", "fraud")
    assert response.status_code == 200, response.content
    activity = Activity.objects.get(pk=response.json()["activity"]["id"])
    assert "Approval 1 of 2" in activity.system_comment
    assert "bob (the requester, and allow_self_approval is off)" in activity.system_comment
    assert ModelVersion.objects.get(registered_model__name="fraud").current_stage == "None"

    assert approve("dave", "fraud").status_code == 200
    assert ModelVersion.objects.get(registered_model__name="fraud").current_stage == "Production"
