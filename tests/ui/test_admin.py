"""The admin's actions call the services, so they obey the stage policies like the API."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from registry import services
from registry.models import ModelVersion, TransitionRequest
from tests.ui.conftest import MODEL

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:registry_transitionrequest_changelist"


def _admin(django_user_model, username: str) -> Client:
    user = django_user_model.objects.create_superuser(username=username, password="x" * 12)
    client = Client()
    client.force_login(user)
    return client


def _run_action(client: Client, action: str, request: TransitionRequest):
    return client.post(
        reverse(CHANGELIST), {"action": action, "_selected_action": [request.pk]}, follow=True
    )


def _stage(number: int) -> str:
    return ModelVersion.objects.get(registered_model__name=MODEL, version=number).current_stage


def test_admin_approval_obeys_a_two_approver_policy(story, django_user_model):
    services.stage_policy_set(
        actor=story.owner, name=MODEL, stage="Production", required_approvals=2
    )
    request = services.transition_request_create(
        actor=story.alice, name=MODEL, version=2, stage="Production", comment="ready"
    )
    first = _admin(django_user_model, "root1")
    second = _admin(django_user_model, "root2")

    response = _run_action(first, "approve_and_archive", request)

    assert "the policy needs more approvers" in response.content.decode()
    request.refresh_from_db()
    assert request.status == "OPEN"
    assert list(request.approvals.values_list("approver_username", flat=True)) == ["root1"]
    assert _stage(2) == "None"

    # The same admin again does not count twice.
    response = _run_action(first, "approve_and_archive", request)
    assert "has already approved this request" in response.content.decode()
    assert request.approvals.count() == 1
    assert _stage(2) == "None"

    response = _run_action(second, "approve_and_archive", request)

    assert "approved; the version is now in Production." in response.content.decode()
    request.refresh_from_db()
    assert request.status == "APPROVED"
    assert _stage(2) == "Production"
    assert _stage(1) == "Archived"


def test_admin_transition_obeys_a_policy_without_direct_moves(story, django_user_model):
    services.stage_policy_set(
        actor=story.owner, name=MODEL, stage="Staging", allow_direct_transition=False
    )
    client = _admin(django_user_model, "root")
    version = ModelVersion.objects.get(registered_model__name=MODEL, version=2)
    response = client.post(
        reverse("admin:registry_modelversion_changelist"),
        {"action": "transition_to_staging", "_selected_action": [version.pk]},
        follow=True,
    )
    assert "allow_direct_transition is off" in response.content.decode()
    assert _stage(2) == "None"


def test_admin_pages_of_every_entity_open(story, django_user_model):
    client = _admin(django_user_model, "root")
    services.transition_request_create(actor=story.alice, name=MODEL, version=2, stage="Staging")
    services.comment_create(actor=story.alice, name=MODEL, version=2, comment="hi")
    for model in [
        "registry_registeredmodel", "registry_modelversion", "registry_registeredmodeltag",
        "registry_modelversiontag", "registry_registeredmodelalias", "registry_transitionrequest",
        "registry_transitionapproval", "registry_comment", "registry_modelversionmanifest",
        "registry_stagepolicy", "registry_activity", "registry_auditentry",
        "webhooks_webhook", "webhooks_webhookdelivery", "accounts_apitoken",
        "accounts_registeredmodelgrant",
    ]:  # fmt: skip
        assert client.get(reverse(f"admin:{model}_changelist")).status_code == 200, model
    request = TransitionRequest.objects.get()
    url = reverse("admin:registry_transitionrequest_change", args=[request.pk])
    assert client.get(url).status_code == 200


def test_staff_who_are_not_registry_admins_do_not_see_the_registry(story, django_user_model):
    staff = django_user_model.objects.create_user(
        username="staff", password="x" * 12, is_staff=True
    )
    client = Client()
    client.force_login(staff)
    response = client.get(reverse(CHANGELIST))
    assert response.status_code == 403
